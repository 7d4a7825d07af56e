"""`/metrics` (app/metrics.py): refused without its token, and after a small Sandbox campaign its counters
say what the Sandbox and the recipients table say (posted, sent, delivered by channel; webhooks received
and applied; one send latency observation per message)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.services.sending.lifecycle import start_campaign
from app.settings import reset_settings_cache
from tests.support.factories import campaign_row, make_sandbox_campaign
from tests.support.processes import drive_until, http_api_process
from tests.support.sandbox import run_sandbox
from tests.support.wait import wait_until

TOKEN = "metrics-token-for-tests-0123456789"


def _get(app, path: str, headers: dict | None = None) -> httpx.Response:
    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            return await client.get(path, headers=headers or {})

    return asyncio.run(go())


def test_metrics_are_refused_without_the_token(database_url, redis_client, monkeypatch):
    from app.http_api import build_http_api

    monkeypatch.delenv("HUBCAST_METRICS_TOKEN", raising=False)
    reset_settings_cache()
    app = build_http_api()
    assert _get(app, "/metrics").status_code == 404  # no token configured: nothing is exposed

    monkeypatch.setenv("HUBCAST_METRICS_TOKEN", TOKEN)
    reset_settings_cache()
    assert _get(app, "/metrics").status_code == 401
    assert _get(app, "/metrics", {"Authorization": "Bearer wrong-token-0123456789"}).status_code == 401
    assert _get(app, "/metrics?token=wrong").status_code == 401
    ok = _get(app, "/metrics", {"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200, ok.text
    assert ok.headers["content-type"].startswith("text/plain")
    names = {family.name for family in text_string_to_metric_families(ok.text)}
    assert {
        "hubcast_messages",
        "hubcast_webhook_events_received",
        "hubcast_send_latency_seconds",
        "hubcast_queue_jobs",
        "hubcast_webhook_events_unapplied",
    } <= names
    assert _get(app, f"/metrics?token={TOKEN}").status_code == 200


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


@pytest.mark.timeout(150)
def test_counters_after_a_sandbox_campaign(
    session, redis_client, redis_url, database_url, make_user, tmp_path, monkeypatch
):
    n = 40
    monkeypatch.setenv("HUBCAST_METRICS_TOKEN", TOKEN)  # for the web process started below
    reset_settings_cache()
    user = make_user("basic")
    with (
        http_api_process(tmp_path / "web", database_url, redis_url) as web,
        run_sandbox(
            tmp_path / "sandbox",
            mps=200,
            extra=(
                "--webhook-url",
                f"{web}/webhooks/whatsapp",
                "--sent-delay",
                "0.05,0.1",
                "--delivered-delay",
                "0.1,0.2",
                "--read-ratio",
                "0",
                "--webhook-batch-window-ms",
                "20",
            ),
        ) as sb,
    ):
        campaign = make_sandbox_campaign(session, sb, n, mps=200)
        start_campaign(session=session, actor=user, campaign_id=campaign.id)
        done = drive_until(redis_url, campaign.id, timeout=90)
        assert done.status == "sent", done.pause_reason
        wait_until(
            lambda: campaign_row(campaign.id).delivered_count == n,
            timeout=60,
            interval=0.2,
            message="every delivered webhook applied",
        )

        def scrape():
            return httpx.get(f"{web}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)

        assert httpx.get(f"{web}/metrics", timeout=10).status_code == 401
        response = scrape()
        assert response.status_code == 200, response.text
        samples = _samples(response.text)
        log = sb.log()

    channel = (("channel", f"Sandbox {sb.url}"), ("channel_id", str(campaign.channel_id)))

    def messages(status: str) -> float:
        return samples.get(("hubcast_messages_total", tuple(sorted((*channel, ("status", status))))), 0)

    assert log["total"] == n
    assert messages("posted") == n  # accepted by the (simulated) WhatsApp API, counted by the worker
    assert messages("sent") == n and messages("delivered") == n  # status webhooks applied by the web process
    assert messages("read") == 0 and messages("failed") == 0
    assert samples[("hubcast_webhook_events_received_total", (("kind", "status"),))] >= 2 * n
    assert samples[("hubcast_send_latency_seconds_count", channel)] == n
    assert samples[("hubcast_webhook_apply_lag_seconds_count", ())] >= 2 * n
    assert samples[("hubcast_webhook_events_unapplied", ())] == 0
    assert ("hubcast_queue_jobs", (("queue", "sending"), ("state", "queued"))) in samples
    # 40 messages at 200 msg/s with a 20-ms burst: the limiter held groups back, and says so for the channel
    assert samples.get(("hubcast_limiter_waits_total", channel), 0) > 0
