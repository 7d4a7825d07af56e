"""Sending a campaign end to end: real database, real Redis, the Sandbox over HTTP, RQ workers.

What an operator would notice: everyone gets exactly one message (counted in the Sandbox's own log),
rows carry the wamid, the campaign ends Sent with the right counters, people with a missing value are
skipped not sent, errors are recorded with Meta's code and title, and pause/resume never resends."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlmodel import select

from app.domain.permissions import NotAuthenticated
from app.models import AuditLog, Campaign, CampaignRecipient, ContactIdentity, Template
from app.services.sending.lifecycle import (
    SendingError,
    cancel_campaign,
    pause_campaign,
    resume_campaign,
    start_campaign,
)
from tests.support.factories import (
    campaign_row,
    make_campaign,
    make_channel,
    make_list,
    make_template,
    number,
    recipients,
)
from tests.support.processes import drive_until, run_burst
from tests.support.sandbox import run_sandbox


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    with run_sandbox(tmp_path_factory.mktemp("sandbox"), mps=1000) as sb:
        yield sb


@pytest.fixture()
def sb(sandbox):
    sandbox.admin("POST", "/_sandbox/reset")
    return sandbox


@pytest.fixture()
def env(session, redis_client, make_user, sb):
    user = make_user("basic")
    channel = make_channel(session, sb.url)
    template = make_template(session, channel)
    return {"user": user, "channel": channel, "template": template, "session": session}


def _per_recipient(sb) -> Counter:
    return Counter({k: v for k, v in sb.log()["per_recipient"].items()})


def test_list_campaign_sends_everyone_exactly_once(env, sb, redis_url):
    session = env["session"]
    numbers = [number(i) for i in range(200)] + ["+33612340000"]  # that one fails later, by webhook
    clist = make_list(session, numbers, first_name=lambda i: "" if i in (3, 7) else f"Ana{i}")
    campaign = make_campaign(session, env["channel"], env["template"], clist)

    start_campaign(session=session, actor=env["user"], campaign_id=campaign.id)
    assert campaign_row(campaign.id).status == "sending"
    done = drive_until(redis_url, campaign.id)

    assert done.status == "sent"
    rows = recipients(campaign.id)
    assert len(rows) == 201
    sent = [r for r in rows if r.status == "sent"]
    skipped = [r for r in rows if r.status == "skipped"]
    assert len(sent) == 199 and all(r.message_id and r.message_id.startswith("wamid.") for r in sent)
    assert {r.address for r in skipped} == {numbers[3], numbers[7]}
    assert all(r.error_title == "Missing value for {{1}}" for r in skipped)
    per = sb.log()["per_recipient"]
    assert len(per) == 199 and set(per.values()) == {1}, "every recipient gets exactly one POST"
    assert numbers[3] not in per and numbers[7] not in per  # never an empty parameter
    assert done.total_recipients == 201 and done.sent_count == 199 and done.failed_count == 2
    assert done.queued_count == 0 and done.finished_at is not None
    # the callback data names our campaign and row (issue 12), so webhooks can be matched before the wamid is stored
    recent = sb.entries()
    assert len(recent) == 199
    by_wamid = {r.message_id: r.id for r in sent}
    assert all(f"hc:{campaign.id}:{by_wamid[e['wamid']]}" == e["biz_opaque_callback_data"] for e in recent)
    # the frozen values are what was sent
    entry = next(e for e in recent if e["to"] == numbers[10])
    assert entry["text"].startswith("Hi Ana10, your order #48213 has shipped and should arrive by Friday.")


def test_unsubscribed_identities_are_left_out_and_duplicates_removed(env, sb, redis_url):
    session = env["session"]
    clist = make_list(session, [number(i) for i in range(5)], subscribed=lambda i: i != 2)
    campaign = make_campaign(session, env["channel"], env["template"], clist)
    start_campaign(session=session, actor=env["user"], campaign_id=campaign.id)
    drive_until(redis_url, campaign.id)
    assert sorted(r.address for r in recipients(campaign.id)) == sorted(number(i) for i in range(5) if i != 2)
    assert number(2) not in sb.log()["per_recipient"]


def test_permanent_error_fails_the_row_with_meta_code_and_title(env, sb, redis_url):
    session = env["session"]
    clist = make_list(session, [number(1), "+1234", number(2)])  # "+1234" is not a phone number to Meta
    campaign = make_campaign(session, env["channel"], env["template"], clist)
    start_campaign(session=session, actor=env["user"], campaign_id=campaign.id)
    done = drive_until(redis_url, campaign.id)
    assert done.status == "sent"
    bad = next(r for r in recipients(campaign.id) if r.address == "+1234")
    assert bad.status == "failed" and bad.error_code == 100 and "not a valid phone number" in bad.error_title
    assert bad.attempts == 1  # permanent: never retried
    assert done.sent_count == 2 and done.failed_count == 1


def test_template_refused_by_whatsapp_pauses_and_keeps_everyone(env, sb, redis_url):
    session = env["session"]
    template = make_template(session, env["channel"], name="no_such_template")
    clist = make_list(session, [number(i) for i in range(3)])
    campaign = make_campaign(session, env["channel"], template, clist)
    start_campaign(session=session, actor=env["user"], campaign_id=campaign.id)
    done = drive_until(redis_url, campaign.id)
    assert done.status == "paused" and "#132001" in done.pause_reason
    # template-wide (issue 12): nobody is failed for it; the rows wait for the template to be fixed
    rows = recipients(campaign.id)
    assert rows and all(r.status == "queued" for r in rows), [(r.status, r.error_code) for r in rows]


def test_rate_limit_window_is_retried_later_and_sent_once(env, sb, redis_url):
    session = env["session"]
    clist = make_list(session, [number(i) for i in range(20)])
    campaign = make_campaign(session, env["channel"], env["template"], clist)
    sb.configure(rate_limit_for_s=2)
    start_campaign(session=session, actor=env["user"], campaign_id=campaign.id)
    done = drive_until(redis_url, campaign.id, timeout=60)
    assert done.status == "sent" and done.sent_count == 20
    log = sb.log()
    assert log["rejected"].get("130429", 0) >= 1, "the fault window was hit"
    assert len(log["per_recipient"]) == 20 and set(log["per_recipient"].values()) == {1}
    assert all(r.attempts <= 1 for r in recipients(campaign.id)), "throughput refusals use no attempt"


def test_server_errors_are_retried_with_backoff(env, sb, redis_url, monkeypatch):
    monkeypatch.setenv("HUBCAST_SEND_BACKOFF_BASE_S", "0.5")
    session = env["session"]
    clist = make_list(session, [number(i) for i in range(5)])
    campaign = make_campaign(session, env["channel"], env["template"], clist)
    start_campaign(session=session, actor=env["user"], campaign_id=campaign.id)
    # The window opens after the start, just before the worker runs, and lasts long enough that a slow
    # machine's first sends still fall in it; backoff 0.5 s, 1 s, 2 s then reaches the end of it.
    sb.configure(server_error_for_s=2)
    done = drive_until(redis_url, campaign.id, timeout=60)
    assert done.status == "sent" and done.sent_count == 5
    rows = recipients(campaign.id)
    assert all(r.attempts >= 2 for r in rows), "each was refused by the 5xx window, then sent"
    assert all(r.error_title == "" and r.message_id for r in rows)
    assert set(sb.log()["per_recipient"].values()) == {1}


def test_wrong_token_pauses_the_campaign_with_the_reason(env, sb, redis_url):
    session = env["session"]
    env["channel"].access_token = "wrong-token"
    session.add(env["channel"])
    session.commit()
    clist = make_list(session, [number(i) for i in range(10)])
    campaign = make_campaign(session, env["channel"], env["template"], clist)
    start_campaign(session=session, actor=env["user"], campaign_id=campaign.id)
    done = drive_until(redis_url, campaign.id)
    assert done.status == "paused"
    assert "#190" in done.pause_reason
    assert all(r.status == "queued" and r.attempts == 0 for r in recipients(campaign.id)), (
        "nothing was sent, so everyone is still to be sent on resume"
    )
    assert sb.log()["total"] == 0
    entry = session.exec(select(AuditLog).where(AuditLog.action == "campaign.auto_pause")).first()
    assert entry is not None and entry.target_id == str(campaign.id)


def test_pause_then_resume_never_resends(env, sb, redis_url):
    session = env["session"]
    clist = make_list(session, [number(i) for i in range(60)])
    campaign = make_campaign(session, env["channel"], env["template"], clist)
    start_campaign(session=session, actor=env["user"], campaign_id=campaign.id)
    # Send a part by hand: one claim of 20 rows, as a worker would, then pause.
    import asyncio

    from app.db import get_engine
    from app.services.sending.batch_runner import load_context, run_batch
    from app.services.sending.config import SendingConfig

    config = SendingConfig(batch_size=20, concurrency=4, job_budget_s=0.0)
    ctx = load_context(get_engine(), campaign.id, config)
    asyncio.run(run_batch(get_engine(), ctx, redis_url))
    first = sb.log()["total"]
    assert first == 20
    pause_campaign(session=session, actor=env["user"], campaign_id=campaign.id, reason="Checking the wording")
    paused = drive_until(redis_url, campaign.id, statuses=("paused",))
    assert paused.pause_reason == "Checking the wording"
    assert sb.log()["total"] == first, "a paused campaign sends nothing"
    resume_campaign(session=session, actor=env["user"], campaign_id=campaign.id)
    done = drive_until(redis_url, campaign.id)
    assert done.status == "sent" and done.sent_count == 60
    per = sb.log()["per_recipient"]
    assert len(per) == 60 and set(per.values()) == {1}


def test_resume_rechecks_the_message_but_not_the_audience_frozen_at_start(env, sb):
    """Resume ignores the audience's problems by their code: a template whose *name* says "audience" is
    still checked (the earlier filter on the wording let it through)."""
    session = env["session"]
    template = make_template(session, env["channel"], name="audience_update")
    campaign = make_campaign(session, env["channel"], template, make_list(session, [number(i) for i in range(3)]))
    start_campaign(session=session, actor=env["user"], campaign_id=campaign.id)
    pause_campaign(session=session, actor=env["user"], campaign_id=campaign.id)
    session.get(Template, template.id).status = "PAUSED"
    session.commit()
    with pytest.raises(SendingError, match="“audience_update” is not approved"):
        resume_campaign(session=session, actor=env["user"], campaign_id=campaign.id)
    assert campaign_row(campaign.id).status == "paused"
    session.get(Template, template.id).status = "APPROVED"
    session.get(Campaign, campaign.id).audience_list_id = None  # the recipients were frozen at start
    session.commit()
    assert resume_campaign(session=session, actor=env["user"], campaign_id=campaign.id).status == "sending"
    cancel_campaign(session=session, actor=env["user"], campaign_id=campaign.id)
    assert sb.log()["total"] == 0


def test_cancel_stops_sending(env, sb, redis_url):
    session = env["session"]
    clist = make_list(session, [number(i) for i in range(10)])
    campaign = make_campaign(session, env["channel"], env["template"], clist)
    start_campaign(session=session, actor=env["user"], campaign_id=campaign.id)
    cancel_campaign(session=session, actor=env["user"], campaign_id=campaign.id)
    run_burst(redis_url)
    assert campaign_row(campaign.id).status == "cancelled"
    assert sb.log()["total"] == 0
    with pytest.raises(SendingError):
        resume_campaign(session=session, actor=env["user"], campaign_id=campaign.id)


def test_opted_out_error_unsubscribes_the_identity(env, sb, redis_url):
    # The Sandbox reports opt-outs by webhook only; Meta may answer the send with #131050 itself.
    # Play the worker's part: claim the row, then store that outcome as the sender classifies it.
    from app.db import get_engine
    from app.services.sending.claims import claim_rows
    from app.services.sending.outcomes import Outcome, store_outcomes
    from app.timeutil import utcnow

    session = env["session"]
    clist = make_list(session, [number(1)])
    campaign = make_campaign(session, env["channel"], env["template"], clist)
    start_campaign(session=session, actor=env["user"], campaign_id=campaign.id)
    claimed = claim_rows(get_engine(), campaign.id, 10, utcnow())
    assert [c.address for c in claimed] == [number(1)]
    store_outcomes(
        get_engine(),
        campaign.id,
        [Outcome(claimed[0], "failed", code=131050, title="User has stopped marketing messages", unsubscribe=True)],
        utcnow(),
    )
    identity = session.exec(select(ContactIdentity).where(ContactIdentity.address == number(1))).one()
    session.refresh(identity)
    assert identity.subscribed is False
    row = session.exec(select(CampaignRecipient).where(CampaignRecipient.campaign_id == campaign.id)).one()
    session.refresh(row)
    assert row.status == "failed" and row.error_code == 131050


# --- refusals ---------------------------------------------------------------------------------------


def test_start_refused_for_template_not_approved(env, sb):
    session = env["session"]
    template = make_template(session, env["channel"], name="summer_preview", status="PENDING")
    campaign = make_campaign(session, env["channel"], template, make_list(session, [number(1)]))
    with pytest.raises(SendingError, match="not approved"):
        start_campaign(session=session, actor=env["user"], campaign_id=campaign.id)
    assert campaign_row(campaign.id).status == "draft" and not recipients(campaign.id)


def test_start_refused_for_disconnected_channel(env, sb):
    session = env["session"]
    env["channel"].status = "disconnected"
    session.add(env["channel"])
    session.commit()
    campaign = make_campaign(session, env["channel"], env["template"], make_list(session, [number(1)]))
    with pytest.raises(SendingError, match="not connected"):
        start_campaign(session=session, actor=env["user"], campaign_id=campaign.id)
    assert campaign_row(campaign.id).status == "draft"


def test_start_refused_for_empty_audience(env, sb):
    session = env["session"]
    clist = make_list(session, [number(1)], subscribed=lambda i: False)
    campaign = make_campaign(session, env["channel"], env["template"], clist)
    with pytest.raises(SendingError, match="no one to send to"):
        start_campaign(session=session, actor=env["user"], campaign_id=campaign.id)
    assert campaign_row(campaign.id).status == "draft" and not recipients(campaign.id)


def test_start_refused_for_unmapped_variable(env, sb):
    session = env["session"]
    campaign = make_campaign(
        session,
        env["channel"],
        env["template"],
        make_list(session, [number(1)]),
        mapping={"body.1": {"source": "field", "key": "first_name"}},
    )
    with pytest.raises(SendingError, match=r"\{\{2\}\}"):
        start_campaign(session=session, actor=env["user"], campaign_id=campaign.id)


def test_start_refused_without_session_or_for_deactivated_user(env, sb, make_user):
    session = env["session"]
    campaign = make_campaign(session, env["channel"], env["template"], make_list(session, [number(1)]))
    with pytest.raises(NotAuthenticated):
        start_campaign(session=session, actor=None, campaign_id=campaign.id)
    gone = make_user("admin", active=False)
    with pytest.raises(NotAuthenticated):
        start_campaign(session=session, actor=gone, campaign_id=campaign.id)
    assert campaign_row(campaign.id).status == "draft"


def test_second_start_is_refused(env, sb, redis_url):
    session = env["session"]
    campaign = make_campaign(session, env["channel"], env["template"], make_list(session, [number(1)]))
    start_campaign(session=session, actor=env["user"], campaign_id=campaign.id)
    with pytest.raises(SendingError):
        start_campaign(session=session, actor=env["user"], campaign_id=campaign.id)
    assert len(recipients(campaign.id)) == 1
