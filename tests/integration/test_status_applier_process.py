"""`hubcast applier`: received webhook statuses applied by a process of their own (real processes, real
Redis, real database). It applies what the web stored; while it runs, web processes stand aside (their
/healthz says so); once it stops — cleanly or killed — a web process applies again, so stored statuses
never wait on a dead process."""

from __future__ import annotations

import signal

import httpx
import pytest

from app.services.inbound import status_applier
from tests.support.processes import cli_process, http_api_process, stop_process
from tests.support.wait import wait_until
from tests.support.webhook_payloads import (
    add_recipients,
    campaign,
    envelope,
    post_signed,
    post_signed_over_http,
    recipient,
    status_item,
)


def _statuses(cid: int, first: int, n: int, status: str) -> list[dict]:
    return [status_item(f"wamid.{cid}.{i}", status) for i in range(first, first + n)]


def _post(url: str, statuses: list[dict]) -> None:
    resp = post_signed_over_http(url, envelope(statuses))
    assert resp.status_code == 200, resp.text


def _healthz(url: str) -> dict:
    return httpx.get(f"{url}/healthz", timeout=5).json()


def _all(rids: list[int], status: str) -> bool:
    return all(recipient(rid).status == status for rid in rids)


@pytest.mark.timeout(120)
def test_the_applier_process_applies_what_was_stored_and_hands_back_when_stopped(
    webhook_world, session, database_url, redis_client, redis_url, tmp_path
):
    cid = webhook_world["campaign"].id
    rids = add_recipients(session, cid, 40, status="sent")
    # Stored by the route (in this process, whose own applier is kept out of the way): nobody applied them.
    assert post_signed(envelope(_statuses(cid, 0, 40, "delivered"))).status_code == 200
    assert _all(rids, "sent")

    proc = cli_process(tmp_path, database_url, redis_url, "applier", ["applier"])
    try:
        wait_until(lambda: _all(rids, "delivered"), timeout=60, interval=0.2, message="statuses applied")
        wait_until(lambda: campaign(cid).delivered_count == 40, timeout=30, interval=0.2, message="counters")
        assert redis_client.exists(status_applier.DEDICATED_KEY)  # web processes stand aside meanwhile
    finally:
        stop_process(proc)
    assert proc.returncode == 0, (tmp_path / "applier.log").read_text()[-2000:]
    assert not redis_client.exists(status_applier.DEDICATED_KEY)  # handed back at once, not after its expiry


@pytest.mark.timeout(150)
def test_a_web_process_stands_aside_while_it_runs_and_takes_over_when_it_is_killed(
    webhook_world, session, database_url, redis_client, redis_url, tmp_path
):
    cid = webhook_world["campaign"].id
    rids = add_recipients(session, cid, 30, status="sent")
    with http_api_process(tmp_path / "web", database_url, redis_url) as web:
        # A dedicated applier announced but not applying (as if stalled): the web must leave the events alone.
        redis_client.set(status_applier.DEDICATED_KEY, "1", px=120_000)
        wait_until(lambda: _healthz(web)["status_applier"] == "dedicated", timeout=30, interval=0.1)
        _post(web, _statuses(cid, 0, 10, "delivered"))
        turns = _healthz(web)["applier_turns"]
        wait_until(lambda: _healthz(web)["applier_turns"] >= turns + 3, timeout=30, interval=0.1, message="turns")
        assert _all(rids[:10], "sent")  # three turns of the web's loop later, still not applied

        # The real one starts (and renews the key), applies, and is then killed without withdrawing it.
        redis_client.delete(status_applier.DEDICATED_KEY)
        proc = cli_process(tmp_path, database_url, redis_url, "applier", ["applier"])
        try:
            wait_until(lambda: _all(rids[:10], "delivered"), timeout=60, interval=0.2, message="applied")
            wait_until(lambda: _healthz(web)["status_applier"] == "dedicated", timeout=30, interval=0.1)
        finally:
            stop_process(proc, sig=signal.SIGKILL)
        _post(web, _statuses(cid, 10, 20, "delivered"))
        # The key expires (DEDICATED_TTL_S) and the web process applies again by itself.
        wait_until(lambda: _all(rids, "delivered"), timeout=30, interval=0.2, message="web took over")
        assert _healthz(web)["status_applier"] == "web"
        wait_until(lambda: campaign(cid).delivered_count == 30, timeout=30, interval=0.2, message="counters")
