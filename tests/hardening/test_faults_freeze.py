"""A worker SIGKILLed in the middle of a streaming audience freeze (app/services/sending/freeze.py): the freeze
resumes in another worker after the dead one's lease expires, and every recipient gets exactly one row and
at most one message (a row the kill left ambiguous ends `unknown`, never resent); nobody is lost.

To kill it mid-freeze rather than whenever, the test holds the database's write lock (SQLite) or the
campaign's row lock (PostgreSQL) once the freeze has committed a few chunks: the freezer blocks on its
next chunk's commit, the test checks the freeze is still incomplete, then kills the worker's process group
and lets go. The killed chunk never commits."""

from __future__ import annotations

import os
import signal
from contextlib import contextmanager

import pytest
from sqlalchemy import select

from app.db import get_engine
from app.models import Campaign
from app.services.sending.lifecycle import start_campaign
from tests.support.factories import campaign_row, make_sandbox_campaign, number, recipients
from tests.support.hardening import figures, record
from tests.support.processes import stop_process, worker_process
from tests.support.sandbox import run_sandbox
from tests.support.wait import wait_until


@contextmanager
def freeze_blocked(campaign_id: int):
    """Hold what the freezer's next commit needs; yields whether the campaign is still freezing."""
    engine = get_engine()
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            freezing = conn.execute(select(Campaign.freezing).where(Campaign.id == campaign_id)).scalar()
        else:
            freezing = conn.execute(
                select(Campaign.freezing).where(Campaign.id == campaign_id).with_for_update()
            ).scalar()
        try:
            yield bool(freezing)
        finally:
            conn.rollback()


@pytest.mark.timeout(240)
def test_sigkill_the_worker_freezing_an_audience_then_the_freeze_resumes(
    session, redis_client, redis_url, database_url, make_user, tmp_path, monkeypatch
):
    n = 6_000
    env = {
        "HUBCAST_SEND_FREEZE_FIRST_CHUNK": "100",
        "HUBCAST_SEND_FREEZE_CHUNK": "20",
        "HUBCAST_SEND_FREEZE_LEASE_S": "2",
        "HUBCAST_SEND_STUCK_GRACE_S": "10",
        "HUBCAST_SEND_TICK_INTERVAL_S": "1",
        "HUBCAST_SEND_ALIVE_TTL_S": "10",
    }
    monkeypatch.setenv("HUBCAST_SEND_FREEZE_FIRST_CHUNK", env["HUBCAST_SEND_FREEZE_FIRST_CHUNK"])  # "Send", here
    user = make_user("basic")
    with run_sandbox(tmp_path / "sandbox", mps=400) as sb:
        campaign = make_sandbox_campaign(session, sb, n, mps=400)
        victim = worker_process(tmp_path, database_url, redis_url, "victim", env)
        successor = None
        try:
            start_campaign(session=session, actor=user, campaign_id=campaign.id)
            first_cursor = campaign_row(campaign.id).freeze_cursor
            assert campaign_row(campaign.id).freezing
            # the victim (the only worker) is freezing: a few chunks committed, far from the end
            wait_until(
                lambda: campaign_row(campaign.id).freeze_cursor > first_cursor,
                timeout=60,
                interval=0.01,
                message="the freeze progressing in the worker",
            )
            with freeze_blocked(campaign.id) as still_freezing:
                assert still_freezing, "the freeze ended before the kill: make it longer"
                frozen_at_kill = len(recipients(campaign.id))
                os.killpg(victim.pid, signal.SIGKILL)  # the worker, its freezer thread and its RQ scheduler
                victim.wait(timeout=10)
            assert frozen_at_kill < n
            successor = worker_process(tmp_path, database_url, redis_url, "successor", env)
            done = wait_until(
                lambda: (lambda row: row if row.status in ("sent", "failed", "paused") else None)(
                    campaign_row(campaign.id)
                ),
                timeout=200,
                interval=0.5,
                message="campaign finished",
            )
        finally:
            for proc in (victim, successor):
                if proc is not None:
                    stop_process(proc)
        fig = figures(sb, campaign.id)
        log = sb.log()

    rows = recipients(campaign.id)
    addresses = [r.address for r in rows]
    ok = (
        done.status == "sent"
        and not done.freezing
        and sorted(addresses) == sorted(number(i) for i in range(n))
        and fig["duplicated"] == 0
        and fig["lost"] == 0
    )
    record(
        "fault",
        "SIGKILL the worker mid-freeze of 6,000 recipients, another resumes",
        ok=ok,
        frozen_at_kill=frozen_at_kill,
        **{k: v for k, v in fig.items() if k != "statuses"},
    )
    assert done.status == "sent", done.pause_reason
    assert not done.freezing and done.total_recipients == n
    assert len(addresses) == len(set(addresses)) == n, "one row per recipient: none twice, none missing"
    assert set(addresses) == {number(i) for i in range(n)}
    assert not log["duplicates"], "no recipient got a second message"
    assert fig["lost"] == 0 and set(fig["statuses"]) <= {"sent", "unknown"}, fig
