"""Where Prometheus figures are kept: counters and histograms in Redis, written by whichever process
does the work (a worker sending, a web process applying webhooks), read by `/metrics` (app.metrics).

Why Redis and not prometheus_client's own registry (or its multiprocess mode): the work happens in
processes that serve no HTTP (`hubcast worker`) and on other machines than the web process Prometheus
scrapes. prometheus_client's multiprocess mode only adds up processes of ONE host that share a
directory, so a scrape of web-1 would miss what the workers on machine B did, and each web process
would report a different number. A handful of HINCRBY per batch (not per message: each process buffers
for a fraction of a second) puts every figure in the one place every web process can read, and any
web process answers the same. A Redis flush (or restart without persistence) resets the counters to
zero, which Prometheus' `rate()` / `increase()` treat as the counter reset they are.

Figures that can be read from the database when scraped (backlogs, ages) are not stored here: see
app.metrics. This module imports nothing of ours, so services and workers can record cheaply.
"""

from __future__ import annotations

import bisect
import logging
from collections import defaultdict
from datetime import UTC, datetime

log = logging.getLogger(__name__)

PREFIX = "hubcast:metrics:"
MESSAGES = PREFIX + "messages"  # field "<channel id>:<status>" (posted, sent, delivered, read, failed, unknown)
WEBHOOK_RECEIVED = PREFIX + "webhook_received"  # field "status" | "message"
WEBHOOK_APPLIED = PREFIX + "webhook_applied"  # field "<channel id>:<status>"
LIMITER = PREFIX + "limiter"  # fields "<channel id>:waits", "<channel id>:seconds"
SEND_LATENCY = PREFIX + "h:send_latency:"  # + channel id; a histogram hash (see Histogram)
APPLY_LAG = PREFIX + "h:apply_lag"  # a histogram hash
HISTOGRAM_INDEX = PREFIX + "histograms"  # the set of histogram keys, so a scrape needs no SCAN

# A Graph API call takes ~0.1-0.5 s; the Sandbox's default latency sits in the middle of these.
SEND_LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0)
# Webhook received -> applied to its recipient: the applier runs every 0.2 s; the target is <= 2 s.
APPLY_LAG_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)
# A group that waits less than this for the rate limiter was not held back by it.
LIMITER_WAIT_MIN_S = 0.002


def channel_field(channel_id: int | None, name: str) -> str:
    return f"{channel_id if channel_id is not None else 0}:{name}"


class Buffer:
    """Figures gathered in one process and written to Redis in one pipeline by `flush` / `flush_async`."""

    def __init__(self) -> None:
        self.counters: dict[tuple[str, str], float] = defaultdict(float)
        self.histograms: dict[str, tuple[tuple[float, ...], list[float]]] = {}

    def count(self, key: str, field: str, n: float = 1) -> None:
        if n:
            self.counters[(key, field)] += n

    def observe(self, key: str, buckets: tuple[float, ...], seconds: float) -> None:
        bounds, values = self.histograms.setdefault(key, (buckets, [0.0] * (len(buckets) + 3)))
        # values: one count per bucket (non-cumulative; +Inf last), then sum, then count
        values[bisect.bisect_left(bounds, seconds)] += 1
        values[-2] += seconds
        values[-1] += 1

    # --- what the app records ------------------------------------------------------------------

    def message(self, channel_id: int | None, status: str, n: int = 1) -> None:
        self.count(MESSAGES, channel_field(channel_id, status), n)

    def send_latency(self, channel_id: int | None, seconds: float) -> None:
        self.observe(f"{SEND_LATENCY}{channel_id or 0}", SEND_LATENCY_BUCKETS, seconds)

    def limiter_wait(self, channel_id: int | None, seconds: float) -> None:
        if seconds >= LIMITER_WAIT_MIN_S:
            self.count(LIMITER, channel_field(channel_id, "waits"))
            self.count(LIMITER, channel_field(channel_id, "seconds"), seconds)

    def webhook_applied(self, channel_id: int | None, status: str, received_at: datetime | None, now: datetime) -> None:
        self.count(WEBHOOK_APPLIED, channel_field(channel_id, status))
        if received_at is not None:
            self.observe(APPLY_LAG, APPLY_LAG_BUCKETS, max(0.0, (_aware(now) - _aware(received_at)).total_seconds()))

    # --- writing -------------------------------------------------------------------------------

    def _commands(self) -> list[tuple[str, tuple]]:
        commands: list[tuple[str, tuple]] = []
        for (key, field), n in self.counters.items():
            if float(n).is_integer():
                commands.append(("hincrby", (key, field, int(n))))
            else:
                commands.append(("hincrbyfloat", (key, field, float(n))))
        for key, (bounds, values) in self.histograms.items():
            commands.append(("sadd", (HISTOGRAM_INDEX, key)))
            for bound, n in zip((*map(repr, bounds), "+Inf"), values[:-2], strict=True):
                if n:
                    commands.append(("hincrby", (key, bound, int(n))))
            commands.append(("hincrbyfloat", (key, "sum", values[-2])))
            commands.append(("hincrby", (key, "count", int(values[-1]))))
        self.counters.clear()
        self.histograms.clear()
        return commands

    def flush(self, redis_client) -> None:
        """Write and clear (synchronous Redis client). Never raises: figures are not worth a failed request."""
        commands = self._commands()
        if not commands:
            return
        try:
            pipe = redis_client.pipeline(transaction=False)
            for name, args in commands:
                getattr(pipe, name)(*args)
            pipe.execute()
        except Exception:
            log.warning("could not write metrics to Redis (%d updates dropped)", len(commands), exc_info=True)

    async def flush_async(self, aredis) -> None:
        commands = self._commands()
        if not commands:
            return
        try:
            async with aredis.pipeline(transaction=False) as pipe:
                for name, args in commands:
                    getattr(pipe, name)(*args)
                await pipe.execute()
        except Exception:
            log.warning("could not write metrics to Redis (%d updates dropped)", len(commands), exc_info=True)


def record_webhook_received(redis_client, statuses: int, messages: int) -> None:
    buffer = Buffer()
    buffer.count(WEBHOOK_RECEIVED, "status", statuses)
    buffer.count(WEBHOOK_RECEIVED, "message", messages)
    buffer.flush(redis_client)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
