"""Faults on the workers themselves, with real `hubcast worker` processes, the Sandbox over HTTP, Redis
and the database: SIGKILL one of two workers mid-campaign (10,000 recipients) and restart it (the suite's
one SIGKILL scenario); SIGTERM one mid-batch (warm shutdown); pause/resume and cancel while sending.
Nobody gets a second message."""

from __future__ import annotations

import os
import signal
import time

import pytest

from app.services.sending.lifecycle import cancel_campaign, pause_campaign, resume_campaign, start_campaign
from tests.support.factories import campaign_row, make_sandbox_campaign, recipients
from tests.support.hardening import figures, record
from tests.support.processes import stop_process, worker_process
from tests.support.sandbox import run_sandbox
from tests.support.wait import wait_until

FINAL = ("sent", "failed", "paused")


def _settled(campaign_id: int):
    row = campaign_row(campaign_id)
    return row if row.status in FINAL else None


def _quiet(sb, seconds: float = 1.5, timeout: float = 20) -> int:
    """Wait until the Sandbox accepted nothing for `seconds`; returns its total then."""
    seen = {"total": sb.log()["total"], "since": time.monotonic()}

    def quiet() -> bool:
        now = sb.log()["total"]
        if now != seen["total"]:
            seen.update(total=now, since=time.monotonic())
        return time.monotonic() - seen["since"] >= seconds

    wait_until(quiet, timeout, interval=0.25, message="sends stopping")
    return seen["total"]


@pytest.mark.timeout(240)
def test_sigkill_one_of_two_workers_mid_campaign_of_10000(
    session, redis_client, redis_url, database_url, make_user, tmp_path
):
    n, cap = 10_000, 1000
    user = make_user("basic")
    env = {"HUBCAST_SEND_STUCK_GRACE_S": "10", "HUBCAST_SEND_TICK_INTERVAL_S": "1", "HUBCAST_SEND_ALIVE_TTL_S": "10"}
    with run_sandbox(tmp_path / "sandbox", mps=cap) as sb:
        campaign = make_sandbox_campaign(session, sb, n, mps=cap)
        victim = worker_process(tmp_path, database_url, redis_url, "victim", env)
        other = worker_process(tmp_path, database_url, redis_url, "other", env)
        restarted = None
        try:
            start_campaign(session=session, actor=user, campaign_id=campaign.id)
            wait_until(lambda: sb.log()["total"] >= n // 5, timeout=120, message="a fifth sent")
            # the victim must be holding claimed rows when it dies
            wait_until(lambda: "send campaign" in (tmp_path / "victim.log").read_text(errors="replace"), timeout=30)
            at_kill = sb.log()["total"]
            killed_at = time.monotonic()
            os.killpg(victim.pid, signal.SIGKILL)  # the worker and its RQ scheduler, mid-batch
            victim.wait(timeout=10)
            restarted = worker_process(tmp_path, database_url, redis_url, "restarted", env)
            done = wait_until(lambda: _settled(campaign.id), timeout=180, interval=0.5, message="campaign finished")
            recovery = time.monotonic() - killed_at
        finally:
            for proc in (victim, other, restarted):
                if proc is not None:
                    stop_process(proc)
        fig = figures(sb, campaign.id)
        log = sb.log()

    rows = recipients(campaign.id)
    ok = (
        done.status == "sent"
        and fig["duplicated"] == 0
        and fig["lost"] == 0
        and set(fig["statuses"]) <= {"sent", "unknown"}
    )
    record(
        "fault",
        "SIGKILL one of two workers mid-campaign, restart it",
        ok=ok,
        recovery_s=round(recovery, 1),
        sent_at_kill=at_kill,
        **{k: v for k, v in fig.items() if k != "statuses"},
    )
    assert done.status == "sent", done.pause_reason
    assert not log["duplicates"], "no recipient got a second POST"
    assert set(fig["statuses"]) <= {"sent", "unknown"}, fig["statuses"]
    assert fig["lost"] == 0 and fig["expected"] == n
    sent = [r for r in rows if r.status == "sent"]
    unknown = [r for r in rows if r.status == "unknown"]
    assert all(r.message_id for r in sent)
    assert all(log["per_recipient"].get(r.address) == 1 for r in sent)
    # an unknown row was at most sent once (the killed job may have posted it before dying)
    assert all(log["per_recipient"].get(r.address, 0) <= 1 for r in unknown)
    assert done.sent_count == len(sent) and done.unknown_count == len(unknown)


@pytest.mark.timeout(150)
def test_sigterm_mid_batch_is_a_warm_shutdown(session, redis_client, redis_url, database_url, make_user, tmp_path):
    n, cap = 800, 200
    user = make_user("basic")
    # Short jobs, so the job running at SIGTERM ends soon; a long grace, so a cold stop would show `sending` rows.
    env = {"HUBCAST_SEND_JOB_BUDGET_S": "3", "HUBCAST_SEND_TICK_INTERVAL_S": "1"}
    with run_sandbox(tmp_path / "sandbox", mps=cap) as sb:
        campaign = make_sandbox_campaign(session, sb, n, mps=cap)
        worker = worker_process(tmp_path, database_url, redis_url, "terminated", env)
        successor = None
        try:
            start_campaign(session=session, actor=user, campaign_id=campaign.id)
            wait_until(lambda: sb.log()["total"] >= n // 4, timeout=60, message="a quarter sent")
            before = sb.log()["total"]
            os.killpg(worker.pid, signal.SIGTERM)
            code = worker.wait(timeout=60)
            stopped_at = sb.log()["total"]
            claimed_left = [r for r in recipients(campaign.id) if r.status == "sending"]
            successor = worker_process(tmp_path, database_url, redis_url, "successor", env)
            done = wait_until(lambda: _settled(campaign.id), timeout=100, interval=0.5, message="campaign finished")
        finally:
            for proc in (worker, successor):
                if proc is not None:
                    stop_process(proc)
        fig = figures(sb, campaign.id)

    text = (tmp_path / "terminated.log").read_text(errors="replace")
    ok = (
        code == 0
        and not claimed_left
        and fig["unknown"] == 0
        and fig["duplicated"] == 0
        and fig["lost"] == 0
        and done.status == "sent"
    )
    record(
        "fault",
        "SIGTERM a worker mid-batch (warm shutdown)",
        ok=ok,
        exit_code=code,
        rows_left_sending=len(claimed_left),
        sent_at_sigterm=before,
        sent_while_stopping=stopped_at - before,
        **{k: v for k, v in fig.items() if k != "statuses"},
    )
    assert code == 0, text[-2000:]
    assert "Warm shut down" in text or "warm shut down" in text.lower(), text[-2000:]
    assert not claimed_left, "a warm shutdown leaves no claimed row behind"
    assert done.status == "sent" and fig["unknown"] == 0 and fig["statuses"] == {"sent": n}
    assert fig["duplicated"] == 0 and fig["sent_once"] == n and fig["lost"] == 0


@pytest.mark.timeout(150)
def test_pause_resume_then_cancel_while_sending_never_resends(
    session, redis_client, redis_url, database_url, make_user, tmp_path
):
    n, cap = 1200, 300
    user = make_user("basic")
    env = {"HUBCAST_SEND_TICK_INTERVAL_S": "1"}
    with run_sandbox(tmp_path / "sandbox", mps=cap) as sb:
        campaign = make_sandbox_campaign(session, sb, n, mps=cap)
        workers = [worker_process(tmp_path, database_url, redis_url, f"w{i}", env) for i in range(2)]
        try:
            start_campaign(session=session, actor=user, campaign_id=campaign.id)
            wait_until(lambda: sb.log()["total"] >= n // 5, timeout=60, message="a fifth sent")
            pause_campaign(session=session, actor=user, campaign_id=campaign.id)
            at_pause = _quiet(sb)
            time.sleep(2)  # a deliberate gap: nothing may be sent while paused, however long we look
            after_pause = sb.log()["total"]
            paused_rows = recipients(campaign.id)
            resume_campaign(session=session, actor=user, campaign_id=campaign.id)
            wait_until(lambda: sb.log()["total"] >= at_pause + n // 6, timeout=60, message="sending resumed")
            cancel_campaign(session=session, actor=user, campaign_id=campaign.id)
            at_cancel = _quiet(sb)
            time.sleep(2)  # a deliberate gap: nothing may be sent after a cancel
            after_cancel = sb.log()["total"]
            cancelled = campaign_row(campaign.id)
        finally:
            for w in workers:
                stop_process(w)
        fig = figures(sb, campaign.id, queued_is_ok=True)
        per = sb.log()["per_recipient"]

    rows = recipients(campaign.id)
    queued = [r for r in rows if r.status == "queued"]
    ok = (
        after_pause == at_pause
        and after_cancel == at_cancel
        and fig["duplicated"] == 0
        and fig["lost"] == 0
        and cancelled.status == "cancelled"
        and queued
        and not any(per.get(r.address) for r in queued)
    )
    record(
        "fault",
        "pause, resume, then cancel during sending",
        ok=ok,
        sent_at_pause=at_pause,
        sent_at_cancel=at_cancel,
        left_unsent_by_cancel=len(queued),
        **{k: v for k, v in fig.items() if k != "statuses"},
    )
    assert after_pause == at_pause, "nothing is sent while paused"
    assert not any(r.status == "sending" for r in paused_rows), "a pause gives claimed rows back"
    assert after_cancel == at_cancel, "nothing is sent after a cancel"
    assert cancelled.status == "cancelled"
    assert fig["duplicated"] == 0, "zero re-sends"
    assert queued, "the cancel came before the end"
    assert not any(per.get(r.address) for r in queued), "rows a cancel left queued were never sent"
    assert all(per.get(r.address) == 1 for r in rows if r.status == "sent")
    assert fig["lost"] == 0
