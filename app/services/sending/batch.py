"""One send job: claim queued recipients, send them at the channel's shared rate, store what happened.

The database is the source of truth (DESIGN rule 2); RQ only says "process the next chunk":
1. *Claim* up to `batch_size` due `queued` rows in one short write transaction (PostgreSQL:
   `FOR UPDATE SKIP LOCKED`; SQLite: `BEGIN IMMEDIATE`), marking them `sending` (claimed_at,
   attempts + 1) and COMMITTING before any HTTP call. Two jobs can never claim the same row, and a
   crash after the commit leaves rows `sending`, which are never resent (the sweeper reconciles them).
2. *Send* with bounded concurrency on one asyncio loop and one pooled CloudApiClient (aiohttp
   underneath). A pacer hands rows out a small group at a time: ONE Redis round trip per group takes
   the group's tokens from the per-channel GCRA limiter "now or never" and adds the rows to the
   "may have been posted" set, just before their requests leave.
3. *Store* outcomes in bulk every fraction of a second (one executemany per kind), and classify:
   retryable -> queued again with exponential backoff + jitter (failed after `max_attempts`);
   rate-limited -> queued again without using an attempt, and a shared cool-down for every worker;
   permanent -> failed with Meta's code and title (131050 also unsubscribes the WhatsApp identity);
   campaign-stopping -> the campaign pauses with the reason shown and unsent rows go back to queued;
   ambiguous (a timeout after the request left) -> `unknown`, never resent.
A job claims again while its buffer runs low, stops at its time budget, when the campaign is no longer
Sending (pause/cancel are seen within a second), or when nothing is due; it then re-enqueues itself
if queued rows remain (now, or when the earliest retry is due). Several jobs and workers may run the
same campaign at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, case, exists, func, insert, literal, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from app.domain.campaign_status import (
    PAUSED,
    R_QUEUED,
    R_SENDING,
    R_SENT,
    R_UNKNOWN,
    SENDING,
)
from app.domain.variables import missing_title
from app.models import AuditLog, Campaign, CampaignRecipient, Channel, ContactIdentity, Template
from app.services.sending.rate_limit import ChannelRate, RateLimiter
from app.services.sending.config import SendingConfig, sending_config
from app.timeutil import utcnow
from app.whatsapp.client import CloudApiClient
from app.whatsapp.components import MissingVariableError, build_send_components
from app.whatsapp.errors import WhatsAppApiError

log = logging.getLogger(__name__)

R = CampaignRecipient.__table__
C = Campaign.__table__
SEND_JOB = "workers.jobs.send_campaign_batch"
# Template problems that fail every recipient the same way: pause rather than burn the audience.
_TEMPLATE_GONE = frozenset({132001, 132015, 132016})
# A job's last outcomes wait this long for an unreachable database before the job gives up (its rows then
# stay `sending` for the sweeper): a short outage must not turn messages we know were sent into `unknown`.
_FINAL_STORE_PATIENCE_S = 60.0


# --- database helpers ---------------------------------------------------------------------------

def is_sqlite(engine_or_conn: Engine | Connection) -> bool:
    return engine_or_conn.dialect.name == "sqlite"


def begin_write(conn: Connection) -> None:
    """Start a write transaction on a fresh connection. SQLite: BEGIN IMMEDIATE takes the write lock
    first, so a read-then-write transaction can never fail with a stale snapshot (SQLITE_BUSY)."""
    if is_sqlite(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def alive_key(campaign_id: int) -> str:
    return f"hubcast:sending:{campaign_id}:alive"


def posted_key(campaign_id: int) -> str:
    """Row ids whose POST may have left (added just before the request). A row claimed but absent
    from this set was never posted, so the sweeper may safely queue it again after a crash."""
    return f"hubcast:sending:{campaign_id}:posted"


def posted_epoch_key(campaign_id: int) -> str:
    """"<redis run_id>:<unix time>": since when (and in which Redis lifetime) the posted set is
    complete. A restarted Redis (new run_id, maybe an old snapshot) or a flush invalidates it."""
    return f"hubcast:sending:{campaign_id}:posted-epoch"


POSTED_TTL_S = 14 * 24 * 3600


def _epoch_value(run_id: str) -> str:
    # The app's clock, like claimed_at, which the sweeper compares it with.
    return f"{run_id}:{time.time():.3f}"


async def ensure_posted_epoch(aredis, campaign_id: int) -> None:
    """Called by every job before it claims: start a new epoch if Redis restarted or was flushed."""
    run_id = (await aredis.info("server")).get("run_id", "")
    current = await aredis.get(posted_epoch_key(campaign_id))
    current = current.decode() if isinstance(current, bytes) else current
    if current and current.split(":")[0] == run_id:
        return
    await aredis.set(posted_epoch_key(campaign_id), _epoch_value(run_id), ex=POSTED_TTL_S, nx=not current)


def ensure_posted_epoch_sync(redis_client, campaign_id: int) -> None:
    run_id = redis_client.info("server").get("run_id", "")
    current = redis_client.get(posted_epoch_key(campaign_id))
    current = current.decode() if isinstance(current, bytes) else current
    if current and current.split(":")[0] == run_id:
        return
    redis_client.set(posted_epoch_key(campaign_id), _epoch_value(run_id), ex=POSTED_TTL_S)


@dataclass(frozen=True)
class Claimed:
    id: int
    address: str
    contact_id: int | None
    variables: dict
    attempts: int


@dataclass
class Outcome:
    row: Claimed
    kind: str  # sent | retry | requeue | failed | unknown
    wamid: str = ""
    code: int | None = None
    title: str = ""
    next_attempt_at: datetime | None = None
    unsubscribe: bool = False


def claim_rows(engine: Engine, campaign_id: int, limit: int, now: datetime) -> list[Claimed]:
    """Atomically mark up to `limit` due queued rows `sending` and return them (committed)."""
    due = select(R.c.id).where(
        R.c.campaign_id == campaign_id, R.c.status == R_QUEUED,
        (R.c.next_attempt_at.is_(None)) | (R.c.next_attempt_at <= now),
    ).order_by(R.c.id).limit(limit)
    if not is_sqlite(engine):
        due = due.with_for_update(skip_locked=True)
    still_sending = exists().where(C.c.id == campaign_id, C.c.status == SENDING)
    stmt = (
        update(R)
        .where(R.c.id.in_(due.scalar_subquery()), R.c.status == R_QUEUED, still_sending)
        .values(status=R_SENDING, claimed_at=now, attempts=R.c.attempts + 1, updated_at=now)
        .returning(R.c.id, R.c.address, R.c.contact_id, R.c.variables, R.c.attempts)
    )
    with engine.connect() as conn:
        begin_write(conn)
        rows = conn.execute(stmt).all()
        conn.commit()
    rows.sort(key=lambda r: r.id)
    return [Claimed(r.id, r.address, r.contact_id, r.variables or {}, r.attempts) for r in rows]


_rng = random.Random()
_STAT_FOR_KIND = {"sent": "sent", "failed": "failed", "retry": "retried", "unknown": "unknown", "requeue": "requeued"}


def backoff_delay(attempt: int, config: SendingConfig, rng: random.Random = _rng) -> float:
    """Exponential backoff with jitter: uniform(c/2, c) where c = min(cap, base * 2^(attempt-1)).
    ("Equal jitter": retries spread out, yet never come back almost at once.)"""
    ceiling = min(config.backoff_cap_s, config.backoff_base_s * (2 ** max(0, attempt - 1)))
    return max(0.5, rng.uniform(ceiling / 2, ceiling))


def _title(exc: WhatsAppApiError) -> str:
    error = exc.error
    text = error.title or "Error"
    if error.details and error.details not in text:
        text = f"{text}: {error.details}"
    return text[:500]


def store_outcomes(engine: Engine, campaign_id: int, outcomes: list[Outcome], now: datetime,
                   pause_reason: str = "") -> None:
    """Write a group of outcomes in one transaction (one executemany per kind)."""
    by_kind: dict[str, list[Outcome]] = {}
    for o in outcomes:
        by_kind.setdefault(o.kind, []).append(o)
    with engine.connect() as conn:
        begin_write(conn)
        if by_kind.get("sent"):
            # A status webhook (matched by our callback data) may already have moved the row on.
            # (ORs, not IN: an expanding IN cannot be used with executemany)
            advance = (R.c.status == R_SENDING) | (R.c.status == R_UNKNOWN) | (R.c.status == R_QUEUED)
            conn.execute(
                update(R).where(R.c.id == bindparam("rid")).values(
                    message_id=func.coalesce(R.c.message_id, bindparam("wamid")),
                    status=case((advance, literal(R_SENT)), else_=R.c.status),
                    sent_at=func.coalesce(R.c.sent_at, bindparam("now")),
                    error_code=case((advance, literal(None)), else_=R.c.error_code),
                    error_title=case((advance, literal("")), else_=R.c.error_title),
                    updated_at=bindparam("now")),
                [{"rid": o.row.id, "wamid": o.wamid, "now": now} for o in by_kind["sent"]])
        if by_kind.get("retry"):
            conn.execute(
                update(R).where(R.c.id == bindparam("rid"), R.c.status == R_SENDING).values(
                    status=R_QUEUED, next_attempt_at=bindparam("nxt"), error_code=bindparam("code"),
                    error_title=bindparam("title"), updated_at=bindparam("now")),
                [{"rid": o.row.id, "nxt": o.next_attempt_at, "code": o.code, "title": o.title, "now": now}
                 for o in by_kind["retry"]])
        if by_kind.get("requeue"):  # never attempted, or refused for throughput: the attempt is given back
            conn.execute(
                update(R).where(R.c.id == bindparam("rid"), R.c.status == R_SENDING).values(
                    status=R_QUEUED, attempts=R.c.attempts - 1, next_attempt_at=bindparam("nxt"),
                    updated_at=bindparam("now")),
                [{"rid": o.row.id, "nxt": o.next_attempt_at, "now": now} for o in by_kind["requeue"]])
        if by_kind.get("failed"):
            conn.execute(
                update(R).where(R.c.id == bindparam("rid"), R.c.status == R_SENDING).values(
                    status="failed", error_code=bindparam("code"), error_title=bindparam("title"),
                    failed_at=bindparam("now"), updated_at=bindparam("now")),
                [{"rid": o.row.id, "code": o.code, "title": o.title, "now": now} for o in by_kind["failed"]])
        if by_kind.get("unknown"):
            conn.execute(
                update(R).where(R.c.id == bindparam("rid"), R.c.status == R_SENDING).values(
                    status=R_UNKNOWN, error_code=bindparam("code"), error_title=bindparam("title"),
                    updated_at=bindparam("now")),
                [{"rid": o.row.id, "code": o.code, "title": o.title, "now": now} for o in by_kind["unknown"]])
        unsubscribe = sorted({o.row.address for o in outcomes if o.unsubscribe})
        if unsubscribe:
            ident = ContactIdentity.__table__
            conn.execute(update(ident).where(ident.c.channel_type == "whatsapp", ident.c.address.in_(unsubscribe),
                                             ident.c.subscribed.is_(True))
                         .values(subscribed=False, subscription_changed_at=now))
        if pause_reason:
            pause_campaign_conn(conn, campaign_id, pause_reason, now)
        conn.commit()


def pause_campaign_conn(conn: Connection, campaign_id: int, reason: str, now: datetime) -> bool:
    """Sending -> Paused with the reason shown, recorded in the audit log (no human actor)."""
    result = conn.execute(update(C).where(C.c.id == campaign_id, C.c.status == SENDING)
                          .values(status=PAUSED, pause_reason=reason[:500], updated_at=now))
    if result.rowcount:
        conn.execute(insert(AuditLog.__table__).values(
            at=now, actor_id=None, actor_email="", action="campaign.auto_pause", outcome="ok",
            target_type="campaign", target_id=str(campaign_id), detail={"reason": reason[:500]}, ip=""))
    return bool(result.rowcount)


# --- the job ------------------------------------------------------------------------------------

@dataclass
class SendContext:
    campaign_id: int
    channel: Channel
    template: Template
    config: SendingConfig


@dataclass
class JobStats:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    retried: int = 0
    unknown: int = 0
    requeued: int = 0
    stopped_reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def load_context(engine: Engine, campaign_id: int, config: SendingConfig) -> SendContext | None:
    from sqlmodel import Session

    with Session(engine, expire_on_commit=False) as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None or campaign.status != SENDING or not campaign.channel_id or not campaign.template_id:
            return None
        channel = session.get(Channel, campaign.channel_id)
        template = session.get(Template, campaign.template_id)
        if channel is None or template is None:
            return None
        session.expunge_all()
    return SendContext(campaign_id, channel, template, config)


def channel_limiter(aredis, channel: Channel, config: SendingConfig) -> RateLimiter:
    """The channel's shared send rate, as every sender on it must use it (campaign jobs, test sends)."""
    mps = float(channel.messages_per_second or 0)
    return RateLimiter(aredis, ChannelRate(channel.id, mps * config.rate_headroom, config.rate_burst_s))


def _classify(row: Claimed, exc: WhatsAppApiError, config: SendingConfig, now: datetime) -> Outcome:
    code, title, c = exc.code, _title(exc), exc.classification
    if exc.ambiguous:
        return Outcome(row, "unknown", code=code,
                       title=f"No answer from WhatsApp ({exc.error.title}); not resent, waiting for its status")
    if c.stops_campaign:
        return Outcome(row, "requeue", code=code, title=title)  # not this person's fault; resume sends it
    if c.retryable:
        if c.rate_limited:
            delay = exc.retry_after or config.rate_limit_cooldown_s
            return Outcome(row, "requeue", code=code, title=title, next_attempt_at=now + timedelta(seconds=delay))
        if row.attempts >= config.max_attempts:
            return Outcome(row, "failed", code=code, title=f"{title} (after {row.attempts} attempts)"[:500])
        delay = backoff_delay(row.attempts, config)
        return Outcome(row, "retry", code=code, title=title, next_attempt_at=now + timedelta(seconds=delay))
    return Outcome(row, "failed", code=code, title=title, unsubscribe=c.unsubscribe_contact)


async def _send_one(client: CloudApiClient, ctx: SendContext, row: Claimed) -> tuple[Outcome, WhatsAppApiError | None]:
    template = ctx.template
    try:
        components = build_send_components(template.components or [], row.variables, template.parameter_format)
    except MissingVariableError as exc:
        return Outcome(row, "failed", title=missing_title(exc.keys)), None
    try:
        result = await client.send_template(row.address, template.name, template.language, components,
                                            biz_opaque_callback_data=str(row.id))
    except WhatsAppApiError as exc:
        return _classify(row, exc, ctx.config, utcnow()), exc
    except Exception as exc:  # a bug or an odd transport failure: the request may have left; never resend
        log.exception("unexpected error sending recipient %s", row.id)
        return Outcome(row, "unknown", title=f"Unexpected error ({type(exc).__name__}); not resent"), None
    return Outcome(row, "sent", wamid=result.message_id), None


async def run_batch(engine: Engine, ctx: SendContext, redis_url: str) -> JobStats:
    import redis.asyncio as aioredis

    config, cid = ctx.config, ctx.campaign_id
    stats = JobStats()
    mps = float(ctx.channel.messages_per_second or 0)
    claim_size = max(1, min(config.batch_size, int(mps * config.claim_window_s) if mps > 0 else config.batch_size))
    # In flight needed = rate x latency; allow ~0.3 s of latency. More than that only stampedes a
    # fresh connection pool at the start.
    senders = config.concurrency if mps <= 0 else max(8, min(config.concurrency, int(mps * 0.3)))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + config.job_budget_s
    rows_q: asyncio.Queue[Claimed | None] = asyncio.Queue(maxsize=senders)
    in_flight = asyncio.Semaphore(senders)  # requests in flight at most
    # A group takes its rate tokens at once, so it may leave as a burst: keep it to ~10 ms of the rate
    # (within the GCRA tolerance). Uncapped, groups only save Redis round trips.
    group_max = max(1, min(senders, int(mps * config.rate_group_s))) if mps > 0 else 64
    results: list[Outcome] = []
    stop = asyncio.Event()
    done = asyncio.Event()
    state: dict[str, Any] = {"pause_reason": "", "reason_stored": False}
    spans: dict[str, float] = stats.extra  # seconds spent per step (summed over coroutines), for profiling

    aredis = aioredis.Redis.from_url(redis_url)
    limiter = channel_limiter(aredis, ctx.channel, config)
    client = CloudApiClient.from_channel(ctx.channel, timeout=config.request_timeout_s,
                                         max_connections=config.concurrency)

    def request_stop(reason: str = "") -> None:
        if reason and not state["pause_reason"]:
            state["pause_reason"] = reason
        stop.set()

    async def feeder() -> None:
        try:
            first = True
            while not stop.is_set() and (first or loop.time() < deadline):
                first = False  # a job always does at least one claim, however small its budget
                t = time.perf_counter()
                try:
                    rows = await asyncio.to_thread(claim_rows, engine, cid, claim_size, utcnow())
                except DBAPIError:  # the database is unreachable: nothing was claimed; try again shortly
                    log.warning("campaign %s: could not claim rows; retrying", cid, exc_info=True)
                    await asyncio.sleep(1.0)
                    continue
                spans["claim_s"] = spans.get("claim_s", 0) + time.perf_counter() - t
                if not rows:
                    break
                stats.claimed += len(rows)
                for i, row in enumerate(rows):
                    if stop.is_set():
                        results.extend(Outcome(r, "requeue") for r in rows[i:])
                        break
                    await rows_q.put(row)
        finally:
            await rows_q.put(None)

    async def send(row: Claimed) -> None:
        try:
            outcome, exc = await _send_one(client, ctx, row)
            results.append(outcome)
            if exc is not None and not exc.ambiguous:
                c = exc.classification
                if c.rate_limited:
                    with contextlib.suppress(Exception):  # Redis lost: this job stops at its next group anyway
                        await limiter.cool_down(exc.retry_after or config.rate_limit_cooldown_s)
                if c.stops_campaign:
                    request_stop(f"WhatsApp refused the campaign: #{exc.code} {_title(exc)}"
                                 if exc.code is not None else f"WhatsApp refused the campaign: {_title(exc)}")
                elif c.template_issue and exc.code in _TEMPLATE_GONE:
                    request_stop(f"The template cannot be sent: #{exc.code} {_title(exc)}")
        finally:
            in_flight.release()

    async def pacer() -> None:
        """Hands rows to send tasks: a group at a time, each group's rate tokens and "may have been
        posted" marks taken in ONE Redis round trip just before its requests leave (per message, it
        was two round trips and a reservation in the future that a late wake-up wasted)."""
        tasks: set[asyncio.Task] = set()
        ended = False
        while not ended:
            await in_flight.acquire()
            row = await rows_q.get()
            if row is None:
                in_flight.release()
                break
            group = [row]
            # More rows join while they are at hand and a request slot is free: never wait for them.
            while len(group) < group_max and not rows_q.empty() and not in_flight.locked():
                nxt = rows_q.get_nowait()
                if nxt is None:
                    ended = True
                    break
                await in_flight.acquire()
                group.append(nxt)
            t = time.perf_counter()
            try:
                taken = not stop.is_set() and await limiter.take_when_free(
                    len(group), posted_key(cid), [r.id for r in group], stop)
            except Exception:  # Redis lost (restart, network): nothing left yet; give the rows back and end
                log.warning("campaign %s: rate limiter unreachable; returning %d rows to the queue", cid, len(group),
                            exc_info=True)
                taken = False
                request_stop()
            spans["limiter_s"] = spans.get("limiter_s", 0) + time.perf_counter() - t
            spans["groups"] = spans.get("groups", 0) + 1
            if not taken or stop.is_set():  # paused or cancelled first: these rows were never sent
                results.extend(Outcome(r, "requeue") for r in group)
                for _ in group:
                    in_flight.release()
                continue
            for r in group:
                task = asyncio.create_task(send(r))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)

    async def flush() -> None:
        reason = "" if state["reason_stored"] else state["pause_reason"]
        if not results and not reason:
            return
        batch = results[:]
        del results[:len(batch)]
        t = time.perf_counter()
        try:
            await asyncio.to_thread(store_outcomes, engine, cid, batch, utcnow(), reason)
        except Exception:
            # The database is unreachable: keep these outcomes (the wamids we hold) for the next flush;
            # dropped, their rows would stay `sending` and end `unknown` although we know what happened.
            results[:0] = batch
            raise
        state["reason_stored"] = state["reason_stored"] or bool(reason)
        for o in batch:
            name = _STAT_FOR_KIND[o.kind]
            setattr(stats, name, getattr(stats, name) + 1)
        spans["store_s"] = spans.get("store_s", 0) + time.perf_counter() - t
        attempted = sum(1 for o in batch if o.kind in ("sent", "failed", "unknown"))
        failed = sum(1 for o in batch if o.kind == "failed")
        if attempted:
            try:
                async with aredis.pipeline(transaction=False) as pipe:
                    pipe.hincrby(error_stats_key(cid), "attempted", attempted)
                    pipe.hincrby(error_stats_key(cid), "failed", failed)
                    pipe.expire(error_stats_key(cid), 7 * 24 * 3600)
                    await pipe.execute()
            except Exception:  # the outcomes are stored; only the error-ratio figures miss this batch
                log.warning("campaign %s: could not count outcomes in Redis", cid, exc_info=True)

    async def flusher() -> None:
        # Not cancelled mid-write: it stops when told, after one last flush.
        while not done.is_set():
            try:
                await asyncio.wait_for(done.wait(), 0.25)
            except asyncio.TimeoutError:
                pass
            try:
                await flush()
            except Exception:  # kept for the next flush; a dead flusher would store nothing more
                log.warning("campaign %s: could not store outcomes; retrying", cid, exc_info=True)

    async def watcher() -> None:
        ticks = 0
        while True:
            await asyncio.sleep(1.0)
            ticks += 1
            try:  # a Redis or database blip must not end the watch: pause/cancel must still be seen
                await aredis.set(alive_key(cid), "1", ex=int(config.alive_ttl_s))
                status = await asyncio.to_thread(campaign_status, engine, cid)
                if status != SENDING:
                    request_stop()
                else:
                    reason = error_ratio_reason(await aredis.hgetall(error_stats_key(cid)), config)
                    if reason:
                        request_stop(reason)
            except Exception:
                log.warning("campaign %s: watcher could not check the campaign", cid, exc_info=True)

    flusher_task, watcher_task = asyncio.create_task(flusher()), asyncio.create_task(watcher())
    try:
        await aredis.set(alive_key(cid), "1", ex=int(config.alive_ttl_s))
        await ensure_posted_epoch(aredis, cid)
        await aredis.expire(posted_key(cid), POSTED_TTL_S)
        await asyncio.gather(feeder(), pacer())
    finally:
        watcher_task.cancel()
        done.set()
        await asyncio.gather(watcher_task, flusher_task, return_exceptions=True)
        patience = loop.time() + _FINAL_STORE_PATIENCE_S
        while True:
            try:
                await flush()
                break
            except Exception:
                if loop.time() > patience:
                    raise
                await asyncio.sleep(1.0)
        stats.stopped_reason = state["pause_reason"]
        await client.aclose()
        await aredis.aclose()
    return stats


def _profiled(directory: str, run):
    import cProfile
    import json
    import os

    profiler = cProfile.Profile()
    started, cpu = time.perf_counter(), time.process_time()
    profiler.enable()
    try:
        stats = run()
    finally:
        profiler.disable()
    name = f"{os.getpid()}-{time.time_ns()}"
    profiler.dump_stats(os.path.join(directory, f"job-{name}.prof"))
    with open(os.path.join(directory, f"spans-{os.getpid()}.jsonl"), "a") as fh:
        fh.write(json.dumps({"wall": time.perf_counter() - started, "cpu": time.process_time() - cpu,
                             "claimed": stats.claimed, "sent": stats.sent, **stats.extra}) + "\n")
    return stats


def campaign_status(engine: Engine, campaign_id: int) -> str | None:
    with engine.connect() as conn:
        return conn.execute(select(C.c.status).where(C.c.id == campaign_id)).scalar()


def error_stats_key(campaign_id: int) -> str:
    """Send-time outcomes since the campaign (re)started; resume clears it (listmonk resets its error
    counter the same way, otherwise a resumed campaign would pause again at once)."""
    return f"hubcast:sending:{campaign_id}:errors"


def error_ratio_reason(stats: dict, config: SendingConfig) -> str:
    """A pause reason when too many attempted sends failed (listmonk's max-errors), else ''."""
    def _n(name: str) -> int:
        value = stats.get(name, stats.get(name.encode(), 0))
        return int(value or 0)

    attempted, failed = _n("attempted"), _n("failed")
    if attempted >= config.error_ratio_min_sample and failed > attempted * config.max_error_ratio:
        return (f"Paused automatically: {failed} of the last {attempted} messages failed "
                f"(more than {config.max_error_ratio:.0%}). Check the errors before resuming.")
    return ""


def next_due(engine: Engine, campaign_id: int) -> datetime | None | bool:
    """When the campaign's next queued row is due: a datetime, True (now), or None (nothing queued)."""
    with engine.connect() as conn:
        row = conn.execute(select(func.count(), func.min(R.c.next_attempt_at)).where(
            R.c.campaign_id == campaign_id, R.c.status == R_QUEUED)).one()
        if not row[0]:
            return None
        has_now = conn.execute(select(R.c.id).where(
            R.c.campaign_id == campaign_id, R.c.status == R_QUEUED,
            (R.c.next_attempt_at.is_(None)) | (R.c.next_attempt_at <= utcnow())).limit(1)).first()
    if has_now:
        return True
    earliest = row[1]
    if earliest is not None and earliest.tzinfo is None:
        from datetime import UTC
        earliest = earliest.replace(tzinfo=UTC)
    return earliest


def enqueue_lanes(campaign_id: int, count: int = 1, *, delay_s: float = 0.0, redis_client=None,
                  config: SendingConfig | None = None) -> None:
    """Put `count` send jobs for the campaign on the sending queue (now or after `delay_s`)."""
    from workers.queues import SENDING as SENDING_QUEUE
    from workers.queues import get_queue

    config = config or sending_config()
    queue = get_queue(SENDING_QUEUE)
    if redis_client is None:
        redis_client = queue.connection
    timeout = int(config.job_budget_s + config.request_timeout_s * 2 + 120)
    ttl = int(max(config.alive_ttl_s, delay_s + config.alive_ttl_s))
    redis_client.set(alive_key(campaign_id), "1", ex=ttl)
    ensure_posted_epoch_sync(redis_client, campaign_id)
    for _ in range(max(1, count)):
        kwargs = dict(job_timeout=timeout, result_ttl=60, failure_ttl=24 * 3600,
                      description=f"send campaign {campaign_id}")
        if delay_s > 0.05:
            queue.enqueue_in(timedelta(seconds=delay_s), SEND_JOB, campaign_id, **kwargs)
        else:
            queue.enqueue(SEND_JOB, campaign_id, **kwargs)


def send_campaign_batch(campaign_id: int, *, config: SendingConfig | None = None) -> dict:
    """The RQ job body (workers.jobs.send_campaign_batch). Returns a small summary for RQ's result."""
    from sqlmodel import Session

    from app.db import get_engine
    from app.redis_conn import redis_url
    from app.services.sending.progress import finish_if_done

    config = config or sending_config()
    engine = get_engine()
    ctx = load_context(engine, campaign_id, config)
    if ctx is None:
        return {"campaign_id": campaign_id, "idle": True}
    started = time.monotonic()
    profile_dir = os.environ.get("HUBCAST_SEND_PROFILE_DIR", "")
    if profile_dir:  # benchmarks only: where a job's time goes (cProfile of the event loop thread + spans)
        stats = _profiled(profile_dir, lambda: asyncio.run(run_batch(engine, ctx, redis_url())))
    else:
        stats = asyncio.run(run_batch(engine, ctx, redis_url()))
    with Session(engine) as session:
        session.connection()  # SQLite: make the write lock the transaction's first step
        if is_sqlite(engine):
            session.connection().exec_driver_sql("BEGIN IMMEDIATE")
        finished = finish_if_done(session, campaign_id)
        session.commit()
    if not finished and campaign_status(engine, campaign_id) == SENDING:
        due = next_due(engine, campaign_id)
        if due is True:
            enqueue_lanes(campaign_id, 1, config=config)
        elif isinstance(due, datetime):
            enqueue_lanes(campaign_id, 1, delay_s=max(0.0, (due - utcnow()).total_seconds()) + 0.05, config=config)
    return {"campaign_id": campaign_id, "claimed": stats.claimed, "sent": stats.sent, "failed": stats.failed,
            "retried": stats.retried, "unknown": stats.unknown, "requeued": stats.requeued,
            "paused": stats.stopped_reason, "finished": finished, "seconds": round(time.monotonic() - started, 3)}
