"""Issue 12, real WhatsApp behaviour, played by the real Sandbox process against a real `hubcast worker`,
the app's webhook route served by a real process (the Sandbox posts its signed statuses there), real Redis
and database. One test per point of the issue the sending engine owns:

2. a `failed` status by webhook counts like a send-time error (unsubscribe, pause, error ratio);
4. template-wide send errors pause and keep the rows; Meta failing (5xx) pauses after a bounded time;
5. a send answered `held_for_quality_assessment` stops new claims until its status arrives;
6. throttles back off for Meta's Retry-After and halve the channel's shared rate;
10. HTTP 502 without a Graph body is ambiguous: `unknown`, never resent, settled by its webhook.
(Point 9, the channel-bound matching, is in tests/integration/test_webhooks_channel_binding.py.)

Each asserts what the operator sees (campaign paused with its reason, contact unsubscribed, rows waiting and
sent after resume) and that nobody got a message twice (the Sandbox's own log)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import pytest
from sqlmodel import Session, select

from app.db import get_engine
from app.models import ContactIdentity, Template, WebhookStatusEvent
from app.services.channels.templates import sync_templates
from app.services.sending.lifecycle import SendingError, resume_campaign, start_campaign
from app.services.sending.rate_limit import slow_key
from tests.support.factories import (
    campaign_row,
    make_campaign,
    make_channel,
    make_list,
    make_template,
    number,
    recipients,
)
from tests.support.processes import http_api_process, stop_process, worker_process
from tests.support.sandbox import max_per_window, run_sandbox
from tests.support.wait import wait_until

FAST_WEBHOOKS = (
    "--sent-delay",
    "0.1,0.3",
    "--delivered-delay",
    "0.2,0.5",
    "--read-delay",
    "0.2,0.5",
    "--failed-delay",
    "0.1,0.3",
)
WORKER_ENV = {"HUBCAST_SEND_TICK_INTERVAL_S": "1", "HUBCAST_SEND_LANES": "1"}


@contextlib.contextmanager
def world(tmp_path, database_url, redis_url, *, mps: int, worker_env: dict | None = None, extra: tuple = ()):
    """The webhook route (a real server), the Sandbox posting to it, and one worker; yields the Sandbox."""
    with (
        http_api_process(tmp_path / "web", database_url, redis_url) as web,
        run_sandbox(
            tmp_path / "sandbox", mps=mps, extra=("--webhook-url", f"{web}/webhooks/whatsapp", *FAST_WEBHOOKS, *extra)
        ) as sb,
    ):
        worker = worker_process(tmp_path, database_url, redis_url, "w0", {**WORKER_ENV, **(worker_env or {})})
        try:
            yield sb
        finally:
            stop_process(worker)


def campaign_of(session, sb, numbers: list[str], *, mps: int):
    channel = make_channel(session, sb.url, mps=mps)
    template = make_template(session, channel)
    return make_campaign(session, channel, template, make_list(session, numbers))


def status_is(campaign_id: int, *statuses: str):
    row = campaign_row(campaign_id)
    return row if row.status in statuses else None


def sent_once(sb, numbers: list[str]) -> None:
    per = sb.log()["per_recipient"]
    twice = {n: c for n, c in per.items() if c > 1}
    assert not twice, f"sent more than once: {twice}"
    assert sorted(per) == sorted(numbers), "everyone got exactly one message"


def failing_number(i: int, suffix: str) -> str:
    """A valid mobile number whose last digits hit a Sandbox failure rule (number(i) never ends so)."""
    return f"+3361{i:03d}{suffix}"


# --- point 2 ---------------------------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_failed_statuses_by_webhook_unsubscribe_and_a_template_wide_one_pauses(
    session, redis_client, redis_url, database_url, make_user, tmp_path
):
    user = make_user("basic")
    stopped = [failing_number(i, "9050") for i in range(2)]  # 131050 by webhook: stopped marketing messages
    paused = failing_number(7, "9015")  # 132015 by webhook: the template was paused after it was sent
    numbers = stopped + [number(i) for i in range(5)] + [paused] + [number(i) for i in range(5, 60)]
    with world(tmp_path, database_url, redis_url, mps=5) as sb:
        sb.configure(failure_rules={"9050": 131050, "9015": 132015})
        campaign = campaign_of(session, sb, numbers, mps=5)  # 12 s of sending: the failures arrive meanwhile
        start_campaign(session=session, actor=user, campaign_id=campaign.id)
        done = wait_until(lambda: status_is(campaign.id, "paused", "sent", "failed"), timeout=90, interval=0.3)
        wait_until(
            lambda: {r.address: r.status for r in recipients(campaign.id)}.get(stopped[1]) == "failed",
            timeout=30,
            message="the opted-out statuses applied",
        )
        log = sb.log()

    assert done.status == "paused", done.status
    assert "#132015" in done.pause_reason and "already sent" in done.pause_reason, done.pause_reason
    rows = {r.address: r for r in recipients(campaign.id)}
    assert all(rows[n].status == "failed" and rows[n].error_code == 131050 for n in stopped)
    assert rows[paused].status == "failed" and rows[paused].error_code == 132015
    assert any(r.status == "queued" for r in rows.values()), "the pause left the rest waiting"
    with Session(get_engine()) as s:
        subscribed = {
            i.address: i.subscribed
            for i in s.exec(select(ContactIdentity).where(ContactIdentity.address.in_(numbers))).all()
        }
    assert not any(subscribed[n] for n in stopped), "131050 by webhook unsubscribes from WhatsApp marketing"
    assert subscribed[paused] and subscribed[number(0)], "other failures unsubscribe nobody"
    assert not [n for n, c in log["per_recipient"].items() if c > 1], "nobody was sent twice"


@pytest.mark.timeout(180)
def test_failed_statuses_by_webhook_count_in_the_error_ratio_auto_pause(
    session, redis_client, redis_url, database_url, make_user, tmp_path, monkeypatch
):
    # Every send is accepted (no send-time failure at all); 2 in 3 fail later, by webhook (#131026).
    monkeypatch.setenv("HUBCAST_SEND_ERROR_RATIO_MIN_SAMPLE", "12")  # the web process applies the statuses
    user = make_user("basic")
    numbers = [failing_number(i, "0000") if i % 3 else number(i) for i in range(90)]
    env = {"HUBCAST_SEND_ERROR_RATIO_MIN_SAMPLE": "12"}
    with world(tmp_path, database_url, redis_url, mps=5, worker_env=env) as sb:
        campaign = campaign_of(session, sb, numbers, mps=5)
        start_campaign(session=session, actor=user, campaign_id=campaign.id)
        done = wait_until(lambda: status_is(campaign.id, "paused", "sent", "failed"), timeout=90, interval=0.3)
        log = sb.log()

    assert done.status == "paused" and "messages failed" in done.pause_reason, (done.status, done.pause_reason)
    rows = recipients(campaign.id)
    failed = [r for r in rows if r.status == "failed"]
    assert failed and all(r.error_code == 131026 and r.attempts == 1 for r in failed), "failed by webhook"
    assert sum(r.status == "queued" for r in rows) > 30, "paused early, not after burning the audience"
    assert log["rejected"] == {} and not [n for n, c in log["per_recipient"].items() if c > 1]


# --- point 4 ---------------------------------------------------------------------------------------


def _template_status(template_id: int) -> str:
    with Session(get_engine()) as s:
        return s.get(Template, template_id).status


@pytest.mark.timeout(180)
def test_template_paused_by_meta_pauses_keeps_the_rows_and_resume_sends_them_once(
    session, redis_client, redis_url, database_url, make_user, tmp_path
):
    user = make_user("basic")
    numbers = [number(i) for i in range(60)]
    with world(tmp_path, database_url, redis_url, mps=20) as sb:
        campaign = campaign_of(session, sb, numbers, mps=20)
        start_campaign(session=session, actor=user, campaign_id=campaign.id)
        wait_until(lambda: sb.log()["total"] >= 10, timeout=60, interval=0.05, message="sending started")
        sb.configure(template_errors={"order_update": 132015})  # Meta pauses the template mid-campaign
        done = wait_until(lambda: status_is(campaign.id, "paused", "sent"), timeout=60, interval=0.2)
        assert done.status == "paused" and "#132015" in done.pause_reason, done.pause_reason
        waiting = [r for r in recipients(campaign.id) if r.status == "queued"]
        assert waiting and not [r for r in recipients(campaign.id) if r.status == "failed"]
        assert all(r.attempts == 0 for r in waiting), "the row that hit the error got its attempt back"
        # The worker re-synced the template: it now shows as Meta has it, and resuming is refused meanwhile.
        wait_until(lambda: _template_status(campaign.template_id) == "PAUSED", timeout=30, message="re-synced")
        with pytest.raises(SendingError):
            resume_campaign(session=session, actor=user, campaign_id=campaign.id)
        # Meta approves it again; the operator syncs and resumes: the waiting rows go, once each.
        sb.configure(template_errors={})
        sync_templates(session=session, actor=None, channel_id=campaign.channel_id)
        session.commit()
        assert _template_status(campaign.template_id) == "APPROVED"
        resume_campaign(session=session, actor=user, campaign_id=campaign.id)
        done = wait_until(lambda: status_is(campaign.id, "sent", "paused"), timeout=60, interval=0.3)
        rejected = sb.log()["rejected"]
        sent_once(sb, numbers)

    assert done.status == "sent", done.pause_reason
    assert rejected.get("132015", 0) >= 1
    assert all(r.status in ("sent", "delivered", "read") for r in recipients(campaign.id))


@pytest.mark.timeout(180)
def test_a_long_meta_outage_pauses_with_every_row_waiting_then_resume_sends_each_once(
    session, redis_client, redis_url, database_url, make_user, tmp_path
):
    user = make_user("basic")
    numbers = [number(i) for i in range(60)]
    # Few attempts and short backoffs: without the outage rule every row would fail within seconds.
    env = {"HUBCAST_SEND_OUTAGE_PAUSE_S": "4", "HUBCAST_SEND_MAX_ATTEMPTS": "2", "HUBCAST_SEND_BACKOFF_BASE_S": "0.5"}
    with world(tmp_path, database_url, redis_url, mps=20, worker_env=env) as sb:
        campaign = campaign_of(session, sb, numbers, mps=20)
        start_campaign(session=session, actor=user, campaign_id=campaign.id)
        wait_until(lambda: sb.log()["total"] >= 10, timeout=60, interval=0.05, message="sending started")
        sb.configure(server_error_for_s=600)  # Meta answers 500 #131000 to everything, for a long time
        done = wait_until(lambda: status_is(campaign.id, "paused", "sent", "failed"), timeout=60, interval=0.2)
        assert done.status == "paused" and "WhatsApp has been failing" in done.pause_reason, done.pause_reason
        rows = recipients(campaign.id)
        assert not [r for r in rows if r.status == "failed"], "nobody lost to the outage"
        waiting = [r for r in rows if r.status == "queued"]
        assert waiting and all(r.attempts <= 2 for r in waiting)
        sb.configure(server_error_for_s=0)  # Meta is back
        resume_campaign(session=session, actor=user, campaign_id=campaign.id)
        done = wait_until(lambda: status_is(campaign.id, "sent", "paused", "failed"), timeout=90, interval=0.3)
        rejected = sb.log()["rejected"]
        sent_once(sb, numbers)

    assert done.status == "sent", done.pause_reason
    assert rejected.get("131000", 0) >= 1


# --- point 5 ---------------------------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_a_held_send_stops_new_claims_until_its_status_arrives(
    session, redis_client, redis_url, database_url, make_user, tmp_path
):
    user = make_user("basic")
    numbers = [number(i) for i in range(80)]
    with world(tmp_path, database_url, redis_url, mps=10) as sb:
        sb.configure(held_count=1, held_seconds=5)  # the first send is held; its statuses come 5 s later
        campaign = campaign_of(session, sb, numbers, mps=10)
        start_campaign(session=session, actor=user, campaign_id=campaign.id)
        done = wait_until(lambda: status_is(campaign.id, "sent", "paused", "failed"), timeout=120, interval=0.3)
        entries = sb.entries()
        sent_once(sb, numbers)

    held = [e for e in entries if e.get("held")]
    assert len(held) == 1
    with Session(get_engine()) as s:
        first_status = min(
            e.received_at
            for e in s.exec(select(WebhookStatusEvent).where(WebhookStatusEvent.message_id == held[0]["wamid"]))
        )
    released = first_status.replace(tzinfo=UTC) if first_status.tzinfo is None else first_status
    before = [e for e in entries if datetime.fromisoformat(e["at"]) < released]
    # At 10/s, 5 s of hold would have let ~50 go; only the rows already claimed (one second's worth) went.
    assert len(before) <= 20, f"{len(before)} sent while a message was held"
    assert done.status == "sent"


# --- point 6 ---------------------------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_throttling_waits_for_retry_after_and_halves_the_shared_rate(
    session, redis_client, redis_url, database_url, make_user, tmp_path
):
    user = make_user("basic")
    numbers = [number(i) for i in range(120)]
    env = {"HUBCAST_SEND_THROTTLE_SLOW_S": "20"}
    with world(tmp_path, database_url, redis_url, mps=1000, worker_env=env) as sb:
        campaign = campaign_of(session, sb, numbers, mps=20)
        start_campaign(session=session, actor=user, campaign_id=campaign.id)
        wait_until(lambda: sb.log()["total"] >= 20, timeout=60, interval=0.05, message="sending started")
        sb.configure(throttle_code=80007, retry_after_s=3, rate_limit_for_s=0.3)
        wait_until(lambda: sb.log()["rejected"].get("80007", 0) >= 1, timeout=30, interval=0.05)
        slowed = wait_until(lambda: redis_client.get(slow_key(campaign.channel_id)), timeout=10, interval=0.05)
        done = wait_until(lambda: status_is(campaign.id, "sent", "paused", "failed"), timeout=120, interval=0.3)
        entries = sb.entries()
        sent_once(sb, numbers)

    assert done.status == "sent", done.pause_reason
    assert int(slowed) >= 1, "the channel's shared rate was halved"
    times = sorted(datetime.fromisoformat(e["at"]).timestamp() for e in entries)
    gaps = [(b - a, b) for a, b in zip(times, times[1:], strict=False)]
    gap, resumed_at = max(gaps)
    # Meta said "Retry-After: 3": nobody sent for about that long (without it the cool-down is ~1 s).
    assert gap >= 2.5, f"longest pause between sends {gap:.2f} s"
    after = [e for e in entries if resumed_at <= datetime.fromisoformat(e["at"]).timestamp() < resumed_at + 4]
    assert max_per_window(after, 1.0) <= 20 * 0.6, "halved rate after the throttle (10/s, not 20/s)"


# --- point 10 --------------------------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_502_without_a_graph_body_is_unknown_never_resent_and_settled_by_its_webhook(
    session, redis_client, redis_url, database_url, make_user, tmp_path
):
    user = make_user("basic")
    numbers = [number(i) for i in range(60)]
    with world(tmp_path, database_url, redis_url, mps=20) as sb:
        campaign = campaign_of(session, sb, numbers, mps=20)
        start_campaign(session=session, actor=user, campaign_id=campaign.id)
        wait_until(lambda: sb.log()["total"] >= 10, timeout=60, interval=0.05, message="sending started")
        sb.configure(bad_gateway_for_s=0.5)  # accepted by Meta, answered 502 (HTML) by the proxy in front
        done = wait_until(lambda: status_is(campaign.id, "sent", "paused", "failed"), timeout=90, interval=0.3)
        gateway = [e for e in sb.entries() if e.get("bad_gateway")]
        wait_until(
            lambda: not any(r.status in ("unknown", "sending") for r in recipients(campaign.id)),
            timeout=30,
            interval=0.3,
            message="the 502 rows settled from their webhooks",
        )
        sent_once(sb, numbers)

    assert done.status == "sent", done.pause_reason
    assert gateway, "some sends were answered 502 without a Graph error"
    rows = {r.address: r for r in recipients(campaign.id)}
    for e in gateway:
        row = rows[e["to"]]
        assert row.message_id == e["wamid"] and row.status in ("sent", "delivered", "read"), (row.status, e)
        assert row.attempts == 1, "never resent"
