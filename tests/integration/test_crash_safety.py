"""Crash safety: Redis losing every job (flushed) does not strand a Sending campaign; rows stuck `sending`
are settled from stored status webhooks carrying our callback data, else marked `unknown` (never resent).

SIGKILL-ing a real worker mid-campaign and restarting it is tests/hardening/test_faults_workers.py (one
scenario, with the figures the hardening report shows)."""

from __future__ import annotations

from datetime import timedelta

from app.db import get_engine
from app.models import WebhookStatusEvent
from app.services.sending.claims import claim_rows
from app.services.sending.config import SendingConfig
from app.services.sending.keys import alive_key, posted_key
from app.services.sending.lifecycle import start_campaign
from app.services.sending.sweeper import sweep
from app.timeutil import utcnow
from tests.support.factories import campaign_row, make_sandbox_campaign, recipients
from tests.support.processes import drive_until
from tests.support.sandbox import run_sandbox


def test_rows_stuck_sending_are_settled_from_webhooks_else_unknown(session, redis_client, make_user, tmp_path):
    user = make_user("basic")
    with run_sandbox(tmp_path / "sandbox") as sb:
        campaign = make_sandbox_campaign(session, sb, 3)
        start_campaign(session=session, actor=user, campaign_id=campaign.id)
        redis_client.flushdb()  # no job will run: we play the worker that dies after claiming
        claimed = claim_rows(get_engine(), campaign.id, 10, utcnow())
        assert len(claimed) == 3
        # A "delivered" status arrived for the first row (matched by our callback data), nothing else.
        session.add(
            WebhookStatusEvent(
                channel_id=campaign.channel_id, message_id="wamid.ABC", status="sent", recipient_id=claimed[0].id
            )
        )
        session.add(
            WebhookStatusEvent(
                channel_id=campaign.channel_id, message_id="wamid.ABC", status="delivered", recipient_id=claimed[0].id
            )
        )
        session.commit()
        config = SendingConfig(stuck_grace_s=60)
        assert sweep(config=config)["touched"] == []  # within the grace period nothing changes
        result = sweep(now=utcnow() + timedelta(seconds=61), config=config)
        assert result["touched"] == [campaign.id] and result["finished"] == [campaign.id]
        assert sb.log()["total"] == 0, "stuck rows are never resent"
    rows = {r.id: r for r in recipients(campaign.id)}
    assert rows[claimed[0].id].status == "delivered" and rows[claimed[0].id].message_id == "wamid.ABC"
    assert {rows[c.id].status for c in claimed[1:]} == {"unknown"}
    done = campaign_row(campaign.id)
    assert done.status == "sent" and done.delivered_count == 1 and done.unknown_count == 2


def test_redis_flushed_mid_campaign_is_reenqueued_from_the_database(
    session, redis_client, redis_url, make_user, tmp_path
):
    user = make_user("basic")
    with run_sandbox(tmp_path / "sandbox") as sb:
        campaign = make_sandbox_campaign(session, sb, 30)
        start_campaign(session=session, actor=user, campaign_id=campaign.id)
        redis_client.flushdb()  # Redis restarted empty: every queued send job is gone
        assert not redis_client.exists(alive_key(campaign.id))
        result = sweep()
        assert result["reenqueued"] == [campaign.id]
        done = drive_until(redis_url, campaign.id)
        assert done.status == "sent" and done.sent_count == 30
        per = sb.log()["per_recipient"]
        assert len(per) == 30 and set(per.values()) == {1}


def test_stuck_rows_that_never_left_are_queued_again_and_sent_once(
    session, redis_client, redis_url, make_user, tmp_path
):
    import time

    user = make_user("basic")
    with run_sandbox(tmp_path / "sandbox") as sb:
        campaign = make_sandbox_campaign(session, sb, 2)
        start_campaign(session=session, actor=user, campaign_id=campaign.id)  # starts the posted-set epoch
        time.sleep(1.2)  # a deliberate gap: the claim must be later than the epoch's start, as in real life
        claimed = claim_rows(get_engine(), campaign.id, 10, utcnow())  # a job claims both, then dies...
        redis_client.sadd(posted_key(campaign.id), claimed[0].id)  # ...after starting the first request
        config = SendingConfig(stuck_grace_s=60)
        sweep(now=utcnow() + timedelta(seconds=61), config=config, redis_client=redis_client)
        rows = {r.id: r for r in recipients(campaign.id)}
        assert rows[claimed[0].id].status == "unknown"  # it may have gone: never resent
        assert rows[claimed[1].id].status == "queued" and rows[claimed[1].id].attempts == 0  # provably not
        done = drive_until(redis_url, campaign.id)
        assert done.status == "sent" and done.sent_count == 1 and done.unknown_count == 1
        assert sb.log()["per_recipient"] == {claimed[1].address: 1}
