"""Redis faults mid-campaign, on a private redis-server this test starts (so FLUSHALL and a restart touch
nothing else): restarted empty on the same port, and separately flushed. Every send job and the posted
set vanish; the campaign must complete from the database, nothing lost, nothing sent twice."""

from __future__ import annotations

import time

import pytest

from app.services.sending.lifecycle import start_campaign
from tests.support.factories import campaign_row, make_sandbox_campaign
from tests.support.hardening import figures, record
from tests.support.processes import stop_process, worker_process
from tests.support.sandbox import run_sandbox
from tests.support.wait import wait_until

N, CAP = 1000, 250


def _run(fault_name: str, inject, session, database_url, redis_url, make_user, tmp_path) -> None:
    user = make_user("basic")
    env = {"HUBCAST_SEND_STUCK_GRACE_S": "8", "HUBCAST_SEND_TICK_INTERVAL_S": "1", "HUBCAST_SEND_ALIVE_TTL_S": "5"}
    with run_sandbox(tmp_path / "sandbox", mps=CAP) as sb:
        campaign = make_sandbox_campaign(session, sb, N, mps=CAP)
        workers = [worker_process(tmp_path, database_url, redis_url, f"w{i}", env) for i in range(2)]
        try:
            start_campaign(session=session, actor=user, campaign_id=campaign.id)
            wait_until(lambda: sb.log()["total"] >= N // 4, timeout=60, message="a quarter sent")
            at_fault = sb.log()["total"]
            began = time.monotonic()
            inject()
            done = wait_until(
                lambda: campaign_row(campaign.id).status in ("sent", "failed", "paused") and campaign_row(campaign.id),
                timeout=120,
                interval=0.5,
                message="campaign finished",
            )
            recovery = time.monotonic() - began
            alive = [w.poll() is None for w in workers]
        finally:
            for w in workers:
                stop_process(w)
        fig = figures(sb, campaign.id)

    ok = done.status == "sent" and fig["duplicated"] == 0 and fig["lost"] == 0 and fig["unknown"] == 0 and all(alive)
    record(
        "fault",
        fault_name,
        ok=ok,
        recovery_s=round(recovery, 1),
        sent_at_fault=at_fault,
        workers_survived=sum(alive),
        **{k: v for k, v in fig.items() if k != "statuses"},
    )
    assert all(alive), "the workers ride out the Redis fault"
    assert done.status == "sent", done.pause_reason
    assert fig["duplicated"] == 0, "nothing sent twice"
    assert fig["lost"] == 0 and fig["unknown"] == 0, fig["statuses"]
    assert fig["sent_once"] == N and fig["statuses"] == {"sent": N}


@pytest.mark.timeout(180)
def test_redis_restarted_mid_campaign(private_redis, session, database_url, make_user, tmp_path):
    _run(
        "Redis restarted (empty) mid-campaign",
        lambda: private_redis.restart(down_s=2.0),
        session,
        database_url,
        private_redis.url,
        make_user,
        tmp_path,
    )


@pytest.mark.timeout(180)
def test_redis_flushall_mid_campaign(private_redis, session, database_url, make_user, tmp_path):
    import redis

    def flush():
        client = redis.Redis.from_url(private_redis.url)
        client.flushall()
        client.close()

    _run("Redis FLUSHALL mid-campaign", flush, session, database_url, private_redis.url, make_user, tmp_path)
