"""`GET /metrics`: Prometheus exposition of the figures operators watch, from any web process.

Every figure is read when Prometheus scrapes, from the places every process shares, so each web
process answers the same numbers whatever process or machine did the work:
- Redis (app.metrics_store): messages by channel and status (`posted` = accepted by the WhatsApp API;
  `sent`/`delivered`/`read`/`failed` = status webhooks applied; `failed` also counts sends WhatsApp
  refused outright; `unknown` = no answer, never resent), webhook events received and applied, the
  apply lag histogram, rate-limiter waits, the send latency histogram;
- the database: recipients still to send per channel, unapplied webhook events and the oldest one's age;
- RQ's own keys: jobs per queue and registry (what `rq info` shows).

Protected by a bearer token (`HUBCAST_METRICS_TOKEN`): `Authorization: Bearer <token>` (or
`?token=<token>` for scrapers that cannot send headers). Without a configured token `/metrics` is
refused (404), so a fresh install exposes nothing.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from app import metrics_store as ms
from app.db import get_engine
from app.domain.campaign_status import SENDING
from app.models import Campaign, Channel, WebhookStatusEvent
from app.redis_conn import get_redis
from app.settings import get_settings
from app.timeutil import utcnow

log = logging.getLogger(__name__)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _by_channel(raw: dict) -> Iterator[tuple[str, str, float]]:
    for field, value in raw.items():
        channel_id, _, name = _text(field).partition(":")
        yield channel_id, name, float(_text(value))


class HubcastCollector(Collector):
    def __init__(self, redis_client=None, engine=None) -> None:
        self.redis = redis_client
        self.engine = engine

    def collect(self):
        redis_client = self.redis or get_redis()
        engine = self.engine or get_engine()
        with engine.connect() as conn:
            names = {str(cid): name for cid, name in conn.execute(select(Channel.id, Channel.name))}
            pending = conn.execute(
                select(Campaign.channel_id, func.sum(Campaign.queued_count))
                .where(Campaign.status == SENDING)
                .group_by(Campaign.channel_id)
            ).all()
            unapplied, oldest = conn.execute(
                select(func.count(), func.min(WebhookStatusEvent.received_at)).where(
                    WebhookStatusEvent.applied_at.is_(None)
                )
            ).one()
        label = lambda cid: names.get(cid, f"#{cid}")

        pipe = redis_client.pipeline(transaction=False)
        for key in (ms.MESSAGES, ms.WEBHOOK_RECEIVED, ms.WEBHOOK_APPLIED, ms.LIMITER):
            pipe.hgetall(key)
        pipe.smembers(ms.HISTOGRAM_INDEX)
        messages, received, applied, limiter, histogram_keys = pipe.execute()
        histogram_keys = sorted(_text(k) for k in histogram_keys)
        pipe = redis_client.pipeline(transaction=False)
        for key in histogram_keys:
            pipe.hgetall(key)
        histograms = dict(zip(histogram_keys, pipe.execute(), strict=True))

        family = CounterMetricFamily(
            "hubcast_messages",
            "Messages by channel and status (posted = accepted by the "
            "WhatsApp API; sent/delivered/read/failed from status webhooks)",
            labels=["channel", "channel_id", "status"],
        )
        per_status: dict[tuple[str, str], float] = {}
        # posted / failed / unknown from the senders, sent / delivered / read / failed from applied webhooks
        for cid, status, n in (*_by_channel(messages), *_by_channel(applied)):
            per_status[(cid, status)] = per_status.get((cid, status), 0.0) + n
        for (cid, status), n in sorted(per_status.items()):
            family.add_metric([label(cid), cid, status], n)
        yield family

        family = CounterMetricFamily(
            "hubcast_webhook_events_received", "Webhook items received (signature valid)", labels=["kind"]
        )
        for kind, n in sorted(received.items()):
            family.add_metric([_text(kind)], float(_text(n)))
        yield family

        family = CounterMetricFamily(
            "hubcast_webhook_events_applied",
            "Status events applied to recipients",
            labels=["channel", "channel_id", "status"],
        )
        for cid, status, n in sorted(_by_channel(applied)):
            family.add_metric([label(cid), cid, status], n)
        yield family

        waits = CounterMetricFamily(
            "hubcast_limiter_waits",
            "Send groups held back by the channel's rate limiter",
            labels=["channel", "channel_id"],
        )
        waited = CounterMetricFamily(
            "hubcast_limiter_wait_seconds", "Time senders waited for the rate limiter", labels=["channel", "channel_id"]
        )
        for cid, name, n in sorted(_by_channel(limiter)):
            (waits if name == "waits" else waited).add_metric([label(cid), cid], n)
        yield waits
        yield waited

        latency = HistogramMetricFamily(
            "hubcast_send_latency_seconds", "WhatsApp API send request latency", labels=["channel", "channel_id"]
        )
        lag = HistogramMetricFamily(
            "hubcast_webhook_apply_lag_seconds", "Time from a status webhook's arrival to its recipient being updated"
        )
        for key, raw in histograms.items():
            buckets, total = _histogram(raw)
            if key.startswith(ms.SEND_LATENCY):
                cid = key[len(ms.SEND_LATENCY) :]
                latency.add_metric([label(cid), cid], buckets, total)
            elif key == ms.APPLY_LAG:
                lag.add_metric([], buckets, total)
        yield latency
        yield lag

        gauge = GaugeMetricFamily(
            "hubcast_recipients_pending",
            "Recipients of Sending campaigns not yet handed to WhatsApp (queued or being sent)",
            labels=["channel", "channel_id"],
        )
        for cid, n in pending:
            gauge.add_metric([label(str(cid)), str(cid)], float(n or 0))
        yield gauge
        yield GaugeMetricFamily(
            "hubcast_webhook_events_unapplied", "Stored status events not applied yet", value=float(unapplied or 0)
        )
        age = 0.0
        if oldest is not None:
            age = max(0.0, (utcnow() - ms._aware(oldest)).total_seconds())
        yield GaugeMetricFamily(
            "hubcast_webhook_oldest_unapplied_seconds",
            "Age of the oldest unapplied status event (0 when none)",
            value=age,
        )
        yield _queue_depths(redis_client)


def _histogram(raw: dict) -> tuple[list[tuple[str, float]], float]:
    values = {_text(k): float(_text(v)) for k, v in raw.items()}
    bounds = sorted((float(k), v) for k, v in values.items() if k not in ("sum", "count", "+Inf"))
    buckets, running = [], 0.0
    for bound, n in bounds:
        running += n
        buckets.append((repr(bound), running))
    buckets.append(("+Inf", running + values.get("+Inf", 0.0)))
    return buckets, values.get("sum", 0.0)


def _queue_depths(redis_client) -> GaugeMetricFamily:
    """Jobs per RQ queue and state, from RQ's keys (the queues `rq info` lists; no import of workers)."""
    from rq import Queue

    family = GaugeMetricFamily("hubcast_queue_jobs", "RQ jobs per queue and state", labels=["queue", "state"])
    for queue in sorted(Queue.all(connection=redis_client), key=lambda q: q.name):
        family.add_metric([queue.name, "queued"], float(queue.count))
        family.add_metric([queue.name, "started"], float(queue.started_job_registry.count))
        family.add_metric([queue.name, "scheduled"], float(queue.scheduled_job_registry.count))
        family.add_metric([queue.name, "failed"], float(queue.failed_job_registry.count))
    return family


def render() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HubcastCollector())
    return generate_latest(registry)


def _token_ok(request: Request, expected: str) -> bool:
    given = ""
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        given = header[7:].strip()
    elif "token" in request.query_params:
        given = request.query_params["token"]
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


async def metrics_endpoint(request: Request) -> Response:
    expected = get_settings().metrics_token
    if not expected:
        return PlainTextResponse("Metrics are disabled: set HUBCAST_METRICS_TOKEN.", status_code=404)
    if not _token_ok(request, expected):
        return PlainTextResponse("Unauthorized", status_code=401, headers={"WWW-Authenticate": "Bearer"})
    try:
        body = await run_in_threadpool(render)
    except Exception:
        log.exception("metrics scrape failed")
        return PlainTextResponse("Metrics unavailable (database or Redis unreachable)", status_code=503)
    return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})
