"""One pass of the status applier, and who runs it: the web process or a dedicated `hubcast applier`.

Stored webhook events (`webhook_ingest.store_events`) are applied to recipients in batches. By default
each web process runs the passes on its own event loop (`app.http_api.StatusApplier`), beside receiving
the webhooks: simple, and fast enough for a single machine. A busy deployment gives applying a process
of its own (`hubcast applier`, `workers/status_applier.py`) so receiving and applying each get a core:
measured in `bench/webhooks.py --applier process`.

The dedicated applier announces itself in Redis (`DEDICATED_KEY`, renewed every pass, expiring after
`DEDICATED_TTL_S`); a web process stands aside while the key is fresh and takes over by itself once it
expires (the dedicated process died or lost Redis), so stored events never wait on a dead process for
more than a few seconds. Two appliers at once are safe: applying is idempotent, SQLite has one writer at a
time (`webhook_ingest.one_writer`), and on PostgreSQL their passes take different recipients (SKIP LOCKED),
which is also how one applier runs two passes at once behind a backlog (`run_passes`).
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from sqlmodel import Session

from app import metrics_store
from app.db import get_engine
from app.redis_conn import get_redis
from app.services.inbound import webhook_ingest

log = logging.getLogger(__name__)

INTERVAL_S = 0.2  # between passes while there is nothing to apply
# Behind a backlog: bigger transactions cost less per event (one commit, one match query, one UPDATE
# per column set) at the price of holding SQLite's writer lock a little longer.
BACKLOG_BATCH = 2000
# PostgreSQL plans the match query from the events table's statistics; a backlog grows that table faster
# than autovacuum analyzes it, and with stale figures the planner sorted the whole backlog on every pass
# (0.5 s a pass at 50,000 events). Refreshed at most this often while a backlog drains.
ANALYZE_EVERY_S = 10.0
REFRESH_EVERY_S = 0.5  # a touched campaign's counters are recomputed at most this often while applying

DEDICATED_KEY = "hubcast:status-applier:dedicated"
DEDICATED_TTL_S = 3.0  # a web process takes over this long after the dedicated applier's last pass
_CHECK_EVERY_S = 0.5  # a web process asks Redis at most this often


def refresh_statistics() -> None:
    try:
        with Session(get_engine()) as session:
            webhook_ingest.refresh_backlog_statistics(session)
    except Exception:  # e.g. a database user that may not ANALYZE: the passes still run, just slower
        log.warning("status applier: could not refresh the events table's statistics", exc_info=True)


def run_pass(dirty: dict[int, float], limit: int = webhook_ingest.DEFAULT_BATCH) -> int:
    """One batch of up to `limit` events and the throttled counter refresh of the campaigns it touched
    (`dirty`: campaign id -> when its counters were last refreshed, kept by the caller between passes).
    Blocking. Returns how many events were applied."""
    with Session(get_engine(), expire_on_commit=False) as session, webhook_ingest.one_writer(session):
        result = webhook_ingest.apply_pending_statuses(session, limit, refresh=False)
        session.commit()
    if result.events:
        figures, applied_at = metrics_store.Buffer(), datetime.now(UTC)
        for channel_id, status, received_at in result.events:
            figures.webhook_applied(channel_id, status, received_at, applied_at)
        figures.flush(get_redis())
    now = time.monotonic()
    for campaign_id in result.campaigns:
        dirty.setdefault(campaign_id, float("-inf"))
    drained = result.applied < limit
    due = [cid for cid, last in dirty.items() if drained or now - last >= REFRESH_EVERY_S]
    if due:
        with Session(get_engine(), expire_on_commit=False) as session, webhook_ingest.one_writer(session):
            webhook_ingest.lock_for_writing(session)
            webhook_ingest.refresh_campaigns(session, due)
            session.commit()
        for cid in due:
            dirty[cid] = now
    if result.applied == 0:
        dirty.clear()  # every touched campaign got its final refresh above
    return result.applied


# Behind a backlog on PostgreSQL, this many passes run at once, each in its own transaction and thread. A pass
# is half Python (reading, folding, metrics) and half waiting on PostgreSQL, one after the other; two at once
# overlap the two halves. They never take the same recipient (`FOR UPDATE SKIP LOCKED`: the second pass gets
# the events after the first one's) and applying is idempotent. SQLite has one writer: one pass at a time.
PARALLEL_PASSES = 2


def run_passes(dirties: list[dict[int, float]], limit: int, backlog: bool) -> int:
    """One pass (`run_pass`) with `dirties[0]`; behind a backlog on PostgreSQL, one per dict at once. Each
    dict is its pass's touched campaigns; between backlogs they are merged into the first, so every campaign
    gets its final counter refresh from the single pass that runs once the backlog is gone."""
    if backlog and len(dirties) > 1 and get_engine().dialect.name == "postgresql":
        with ThreadPoolExecutor(len(dirties), thread_name_prefix="status-pass") as pool:
            return sum(pool.map(lambda dirty: run_pass(dirty, limit), dirties))
    first = dirties[0]
    for other in dirties[1:]:
        for campaign_id, refreshed in other.items():
            first[campaign_id] = min(refreshed, first.get(campaign_id, refreshed))
        other.clear()
    return run_pass(first, limit)


class Pacer:
    """The batch size, when to ANALYZE, and each parallel pass's touched campaigns, from what the last pass
    applied (shared by both loops: the web process's and `hubcast applier`'s)."""

    def __init__(self) -> None:
        self.limit = webhook_ingest.DEFAULT_BATCH
        self._analyzed = float("-inf")
        self.dirties: list[dict[int, float]] = [{} for _ in range(PARALLEL_PASSES)]

    def run(self) -> int:
        """The next pass (or passes, behind a backlog): `run_passes` with this pacer's state. Blocking."""
        return run_passes(self.dirties, self.limit, self.backlog)

    def analyze_due(self) -> bool:
        if self.backlog and time.monotonic() - self._analyzed > ANALYZE_EVERY_S:
            self._analyzed = time.monotonic()
            return True
        return False

    @property
    def backlog(self) -> bool:
        """The last pass was full: run the next ones in bulk (bigger batches, in parallel where allowed)."""
        return self.limit == BACKLOG_BATCH

    def after(self, applied: int) -> bool:
        """Record a pass's result; True when a backlog remains (run the next pass at once)."""
        if applied >= self.limit:
            self.limit = BACKLOG_BATCH
            return True
        self.limit = webhook_ingest.DEFAULT_BATCH
        return False


def announce_dedicated() -> None:
    """Called by the dedicated applier before each pass: web processes stand aside while this is fresh."""
    get_redis().set(DEDICATED_KEY, "1", px=int(DEDICATED_TTL_S * 1000))


def withdraw_dedicated() -> None:
    """A dedicated applier stopping cleanly hands applying back to the web processes at once."""
    try:
        get_redis().delete(DEDICATED_KEY)
    except Exception:  # Redis gone: the key expires by itself
        log.warning("status applier: could not withdraw the dedicated applier's key", exc_info=True)


class DedicatedWatch:
    """A web process's view of whether a dedicated applier runs (Redis asked at most every 0.5 s). When
    Redis cannot answer, the web process applies: stored events must not wait on what it cannot see."""

    def __init__(self) -> None:
        self._checked = float("-inf")
        self._alive = False

    def alive(self) -> bool:
        now = time.monotonic()
        if now - self._checked >= _CHECK_EVERY_S:
            self._checked = now
            try:
                self._alive = bool(get_redis().exists(DEDICATED_KEY))
            except Exception:
                self._alive = False
        return self._alive
