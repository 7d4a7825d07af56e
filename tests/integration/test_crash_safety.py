"""Crash safety: SIGKILL a worker in the middle of a campaign, restart it, and nobody gets a second
message; every row ends terminal (sent) or `unknown` (the killed job's in-flight sends, never resent).
Also: Redis losing every job (flushed) does not strand a Sending campaign; rows stuck `sending` are
settled from stored status webhooks carrying our callback data."""

from __future__ import annotations

import os
import signal
from datetime import timedelta

import pytest

from app.db import get_engine
from app.models import WebhookStatusEvent
from app.services.sending.lifecycle import start_campaign
from app.services.sending.batch import alive_key, claim_rows
from app.services.sending.config import SendingConfig
from app.services.sending.sweeper import sweep
from app.timeutil import utcnow
from tests.integration.test_sending_support import (
    campaign_row,
    drive_until,
    make_sandbox_campaign,
    recipients,
    run_sandbox,
    stop_process,
    wait_for,
    worker_process,
)

N = 2000
CAP = 200


@pytest.mark.timeout(150)
def test_sigkill_a_worker_mid_campaign_then_restart(session, redis_client, redis_url, database_url, make_user,
                                                    tmp_path):
    user = make_user("basic")
    env = {"HUBCAST_SEND_STUCK_GRACE_S": "12", "HUBCAST_SEND_TICK_INTERVAL_S": "1"}
    with run_sandbox(tmp_path / "sandbox", mps=CAP) as sb:
        campaign = make_sandbox_campaign(session, sb, N, mps=CAP)
        victim = worker_process(tmp_path, database_url, redis_url, "victim", env)
        other = worker_process(tmp_path, database_url, redis_url, "other", env)
        restarted = None
        try:
            start_campaign(session=session, actor=user, campaign_id=campaign.id)
            wait_for(lambda: sb.log()["total"] >= N // 4, timeout=60, message="a quarter sent")
            os.killpg(victim.pid, signal.SIGKILL)  # the worker and its RQ scheduler, mid-batch
            victim.wait(timeout=10)
            restarted = worker_process(tmp_path, database_url, redis_url, "restarted", env)
            done = wait_for(lambda: campaign_row(campaign.id).status in ("sent", "failed", "paused")
                            and campaign_row(campaign.id), timeout=100, interval=0.5, message="campaign finished")
        finally:
            for proc in (victim, other, restarted):
                if proc is not None:
                    stop_process(proc)
        log = sb.log()

    assert done.status == "sent", done.pause_reason
    assert not log["duplicates"], "no recipient got a second POST"
    rows = recipients(campaign.id)
    statuses = {r.status for r in rows}
    assert statuses <= {"sent", "unknown"}, statuses
    sent = [r for r in rows if r.status == "sent"]
    unknown = [r for r in rows if r.status == "unknown"]
    print(f"after SIGKILL: {len(sent)} sent, {len(unknown)} unknown, sandbox accepted {log['total']}")
    assert all(r.message_id for r in sent)
    assert all(log["per_recipient"].get(r.address) == 1 for r in sent)
    # an unknown row was at most sent once (the killed job may have posted it before dying)
    assert all(log["per_recipient"].get(r.address, 0) <= 1 for r in unknown)
    assert done.sent_count == len(sent) and done.unknown_count == len(unknown)
    assert len(log["per_recipient"]) >= len(sent)


def test_rows_stuck_sending_are_settled_from_webhooks_else_unknown(session, redis_client, make_user, tmp_path):
    user = make_user("basic")
    with run_sandbox(tmp_path / "sandbox") as sb:
        campaign = make_sandbox_campaign(session, sb, 3)
        start_campaign(session=session, actor=user, campaign_id=campaign.id)
        redis_client.flushdb()  # no job will run: we play the worker that dies after claiming
        claimed = claim_rows(get_engine(), campaign.id, 10, utcnow())
        assert len(claimed) == 3
        # A "delivered" status arrived for the first row (matched by our callback data), nothing else.
        session.add(WebhookStatusEvent(channel_id=campaign.channel_id, message_id="wamid.ABC", status="sent",
                                       recipient_id=claimed[0].id))
        session.add(WebhookStatusEvent(channel_id=campaign.channel_id, message_id="wamid.ABC", status="delivered",
                                       recipient_id=claimed[0].id))
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


def test_redis_flushed_mid_campaign_is_reenqueued_from_the_database(session, redis_client, redis_url, make_user,
                                                                   tmp_path):
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


def test_stuck_rows_that_never_left_are_queued_again_and_sent_once(session, redis_client, redis_url, make_user,
                                                                   tmp_path):
    import time

    from app.services.sending.batch import posted_key

    user = make_user("basic")
    with run_sandbox(tmp_path / "sandbox") as sb:
        campaign = make_sandbox_campaign(session, sb, 2)
        start_campaign(session=session, actor=user, campaign_id=campaign.id)  # starts the posted-set epoch
        time.sleep(1.2)
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
