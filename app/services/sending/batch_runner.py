"""One send job's loop: claim queued recipients, send them at the channel's shared rate, store what happened.

A `BatchRunner` holds one job's state and runs four coroutines on one asyncio loop:
- `feeder` *claims* rows (`claims.claim_rows`, committed before any HTTP call) while its buffer runs low;
- `pacer` hands rows to send tasks a small group at a time: ONE Redis round trip per group takes the
  group's tokens from the per-channel GCRA limiter "now or never" and adds the rows to the "may have
  been posted" set (`keys.posted_key`), just before their requests leave; bounded concurrency, one
  pooled `Messenger` (`messenger.messenger_for`, or one passed in);
- `flusher` *stores* outcomes in bulk every fraction of a second (`outcomes.store_outcomes`); an
  unreachable database keeps them for the next flush, never drops them;
- `watcher` keeps the job's "alive" key fresh and stops the job within a second when the campaign is
  no longer Sending (pause/cancel) or too many sends failed (the auto-pause).
WhatsApp's own signals (issue 12) act here too: a throttle cools the whole number down and halves its rate
(`RateLimiter.throttled`); a send answered "held" stops the claims until its status arrives (`pacing`);
Meta failing for `outage_pause_s` pauses the campaign with its rows waiting; a template-wide error pauses it
and re-syncs the template (`template_resync`). Each send carries `hc:<campaign>:<row>` as its
`biz_opaque_callback_data`, which the status webhooks echo.
A job stops at its time budget, when told to, or when nothing is due; `job.send_campaign_batch` then
re-enqueues it if queued rows remain. Several jobs and workers may run the same campaign at once.
What each failure becomes (retry, requeue, failed, `unknown`, a paused campaign) is `outcomes`' business.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from app import metrics_store
from app.domain.campaign_status import SENDING
from app.domain.variables import missing_title
from app.models import Campaign, Channel, Template
from app.services.sending import pacing
from app.services.sending.claims import Claimed, campaign_status, claim_rows
from app.services.sending.config import SendingConfig
from app.services.sending.keys import (
    POSTED_TTL_S,
    alive_key,
    callback_data,
    ensure_posted_epoch,
    error_stats_key,
    posted_key,
)
from app.services.sending.messenger import messenger_for
from app.services.sending.outcomes import (
    STAT_FOR_KIND,
    Outcome,
    classify_error,
    error_ratio_reason,
    outage_reason,
    stop_reason,
    store_outcomes,
)
from app.services.sending.quota import QuotaGate, hold_rows
from app.services.sending.rate_limit import RateLimiter, channel_limiter
from app.services.sending.template_resync import resync_channel_templates
from app.timeutil import utcnow
from app.whatsapp.components import (
    MissingVariableError,
    TemplateVariable,
    build_send_components,
    template_variables,
)
from app.whatsapp.errors import WhatsAppApiError
from app.whatsapp.messenger import Messenger

log = logging.getLogger(__name__)

# A job's last outcomes wait this long for an unreachable database before the job gives up (its rows then
# stay `sending` for the sweeper): a short outage must not turn messages we know were sent into `unknown`.
_FINAL_STORE_PATIENCE_S = 60.0
# /metrics `hubcast_messages_total{status}` for what a send attempt ended as (stored outcomes only)
_FIGURE_FOR_KIND = {"sent": "posted", "failed": "failed", "unknown": "unknown"}


@dataclass
class SendContext:
    campaign_id: int
    channel: Channel
    template: Template
    config: SendingConfig
    # What every send of the job repeats, read once (per message, parsing the template's variables and
    # reading the detached ORM attributes cost ~5% of a worker's CPU):
    channel_id: int = field(init=False)
    template_name: str = field(init=False)
    language: str = field(init=False)
    components: list = field(init=False)
    variables: list[TemplateVariable] = field(init=False)

    def __post_init__(self) -> None:
        self.channel_id = self.channel.id
        self.template_name, self.language = self.template.name, self.template.language
        self.components = list(self.template.components or [])
        self.variables = template_variables(self.components, self.template.parameter_format)


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
    """The campaign's channel and template, detached, when it is Sending and can be sent; else None."""
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


async def send_one(messenger: Messenger, ctx: SendContext, row: Claimed) -> tuple[Outcome, WhatsAppApiError | None]:
    """Send one claimed row; its outcome, and the WhatsApp error when there was one."""
    try:
        components = build_send_components(ctx.components, row.variables, variables=ctx.variables)
    except MissingVariableError as exc:
        return Outcome(row, "failed", title=missing_title(exc.keys)), None
    try:
        result = await messenger.send_template(
            row.address,
            ctx.template_name,
            ctx.language,
            components,
            biz_opaque_callback_data=callback_data(ctx.campaign_id, row.id),
        )
    except WhatsAppApiError as exc:
        return classify_error(row, exc, ctx.config, utcnow()), exc
    except Exception as exc:  # a bug or an odd transport failure: the request may have left; never resend
        log.exception("unexpected error sending recipient %s", row.id)
        return Outcome(row, "unknown", title=f"Unexpected error ({type(exc).__name__}); not resent"), None
    return Outcome(row, "sent", wamid=result.message_id, held=result.message_status in pacing.HELD_STATUSES), None


class BatchRunner:
    """One job's run over a campaign (see the module docstring). Build it inside the running event loop
    and `await run()` once. `messenger`: sends through it instead of one built by `messenger_for` (the
    caller then owns and closes it)."""

    # Opened by `run()` and closed when it ends:
    aredis: aioredis.Redis
    limiter: RateLimiter
    quota: QuotaGate
    messenger: Messenger

    def __init__(self, engine: Engine, ctx: SendContext, redis_url: str, *, messenger: Messenger | None = None):
        config = ctx.config
        self.engine, self.ctx, self.config, self.cid = engine, ctx, config, ctx.campaign_id
        self.redis_url = redis_url
        self.stats = JobStats()
        self.spans: dict[str, float] = self.stats.extra  # seconds per step (summed over coroutines), for profiling
        mps = float(ctx.channel.messages_per_second or 0)
        self.claim_size = max(
            1, min(config.batch_size, int(mps * config.claim_window_s) if mps > 0 else config.batch_size)
        )
        # In flight needed = rate x latency; allow ~0.3 s of latency. More than that only stampedes a
        # fresh connection pool at the start.
        senders = config.concurrency if mps <= 0 else max(8, min(config.concurrency, int(mps * 0.3)))
        self.rows: asyncio.Queue[Claimed | None] = asyncio.Queue(maxsize=senders)
        self.in_flight = asyncio.Semaphore(senders)  # requests in flight at most
        # A group takes its rate tokens at once, so it may leave as a burst: keep it to ~10 ms of the rate
        # (within the GCRA tolerance). Uncapped, groups only save Redis round trips.
        self.group_max = max(1, min(senders, int(mps * config.rate_group_s))) if mps > 0 else 64
        self.results: list[Outcome] = []  # outcomes not stored yet
        self.figures = metrics_store.Buffer()  # /metrics figures, written to Redis with each flush
        self.stop = asyncio.Event()  # no more claims, no more sends
        self.done = asyncio.Event()  # sending is over: the flusher flushes once more and ends
        self.pause_reason = ""
        self.reason_stored = False
        self._given_messenger = messenger
        self.outage_seen = False  # this job stamped (or saw) a Meta outage: its next success clears it
        self.outage_cleared_at = float("-inf")  # ... and any job's successes clear a stale stamp once a second
        self.resync: asyncio.Task | None = None  # the template re-sync after a template-wide error
        self.loop = asyncio.get_running_loop()
        self.deadline = self.loop.time() + config.job_budget_s

    def request_stop(self, reason: str = "") -> None:
        """Stop claiming and sending; with a reason, the campaign pauses with it (the first one wins)."""
        if reason and not self.pause_reason:
            self.pause_reason = reason
        self.stop.set()

    async def run(self) -> JobStats:
        config, cid = self.config, self.cid
        self.aredis = aioredis.Redis.from_url(self.redis_url)
        self.limiter = channel_limiter(self.aredis, self.ctx.channel, config)
        self.quota = QuotaGate(self.engine, self.ctx.channel)
        self.messenger = self._given_messenger or messenger_for(
            self.ctx.channel, timeout=config.request_timeout_s, max_connections=config.concurrency
        )
        flusher_task, watcher_task = asyncio.create_task(self.flusher()), asyncio.create_task(self.watcher())
        try:
            await self.aredis.set(alive_key(cid), "1", ex=int(config.alive_ttl_s))
            await ensure_posted_epoch(self.aredis, cid)
            await self.aredis.expire(posted_key(cid), POSTED_TTL_S)
            await asyncio.gather(self.feeder(), self.pacer())
        finally:
            watcher_task.cancel()
            if self.resync is not None:
                await asyncio.gather(self.resync, return_exceptions=True)
            self.done.set()
            await asyncio.gather(watcher_task, flusher_task, return_exceptions=True)
            patience = self.loop.time() + _FINAL_STORE_PATIENCE_S
            while True:
                try:
                    await self.flush()
                    break
                except Exception:
                    if self.loop.time() > patience:
                        raise
                    await asyncio.sleep(1.0)
            self.stats.stopped_reason = self.pause_reason
            if self._given_messenger is None:
                await self.messenger.aclose()
            await self.aredis.aclose()
        return self.stats

    async def feeder(self) -> None:
        """Claims rows into the queue while there is time, until nothing is due or the job stops."""
        try:
            first = True
            while not self.stop.is_set() and (first or self.loop.time() < self.deadline):
                first = False  # a job always does at least one claim, however small its budget
                await self._wait_while_held()
                if self.stop.is_set():
                    break
                t = time.perf_counter()
                try:
                    rows = await asyncio.to_thread(claim_rows, self.engine, self.cid, self.claim_size, utcnow())
                except DBAPIError:  # the database is unreachable: nothing was claimed; try again shortly
                    log.warning("campaign %s: could not claim rows; retrying", self.cid, exc_info=True)
                    await asyncio.sleep(1.0)
                    continue
                self.spans["claim_s"] = self.spans.get("claim_s", 0) + time.perf_counter() - t
                if not rows:
                    break
                self.stats.claimed += len(rows)
                rows, over_quota = await self.admit_within_quota(rows)
                for i, row in enumerate(rows):
                    if self.stop.is_set():
                        self.results.extend(Outcome(r, "requeue") for r in rows[i:])
                        break
                    await self.rows.put(row)
                if over_quota:  # the daily messaging limit is reached: the rest of the campaign waits
                    break
        finally:
            await self.rows.put(None)

    async def admit_within_quota(self, rows: list[Claimed]) -> tuple[list[Claimed], bool]:
        """The claimed rows Meta's daily messaging limit lets go now (`quota.QuotaGate`: one Redis round trip
        per claim, none for an unlimited tier); the others wait ("Waiting for quota"). (rows, any held)."""
        if not self.quota.active:
            return rows, False
        t = time.perf_counter()
        try:
            admission = await self.quota.admit(self.aredis, rows)
        except Exception:  # Redis lost: nothing was sent; give the rows back and end, like the rate limiter
            log.warning(
                "campaign %s: messaging limit unreachable; returning %d rows", self.cid, len(rows), exc_info=True
            )
            self.results.extend(Outcome(r, "requeue") for r in rows)
            self.request_stop()
            return [], True
        if admission.held:
            free_at = admission.free_at or utcnow()
            try:
                waiting = await asyncio.to_thread(hold_rows, self.engine, self.cid, admission.held, free_at, utcnow())
                log.info("campaign %s: %d rows wait for the messaging limit until %s", self.cid, waiting, free_at)
            except Exception:  # stored by the flusher instead (without the "waiting for quota" title)
                log.warning("campaign %s: could not hold rows for the messaging limit", self.cid, exc_info=True)
                self.results.extend(Outcome(r, "requeue", next_attempt_at=free_at) for r in admission.held)
        self.spans["quota_s"] = self.spans.get("quota_s", 0) + time.perf_counter() - t
        return admission.allowed, bool(admission.held)

    async def pacer(self) -> None:
        """Hands rows to send tasks: a group at a time, each group's rate tokens and "may have been
        posted" marks taken in ONE Redis round trip just before its requests leave (per message, it
        was two round trips and a reservation in the future that a late wake-up wasted)."""
        tasks: set[asyncio.Task] = set()
        ended = False
        while not ended:
            await self.in_flight.acquire()
            row = await self.rows.get()
            if row is None:
                self.in_flight.release()
                break
            group = [row]
            # More rows join while they are at hand and a request slot is free: never wait for them.
            while len(group) < self.group_max and not self.rows.empty() and not self.in_flight.locked():
                nxt = self.rows.get_nowait()
                if nxt is None:
                    ended = True
                    break
                await self.in_flight.acquire()
                group.append(nxt)
            t = time.perf_counter()
            try:
                taken = not self.stop.is_set() and await self.limiter.take_when_free(
                    len(group), posted_key(self.cid), [r.id for r in group], self.stop
                )
            except Exception:  # Redis lost (restart, network): nothing left yet; give the rows back and end
                log.warning(
                    "campaign %s: rate limiter unreachable; returning %d rows to the queue",
                    self.cid,
                    len(group),
                    exc_info=True,
                )
                taken = False
                self.request_stop()
            self.spans["limiter_s"] = self.spans.get("limiter_s", 0) + time.perf_counter() - t
            if taken:
                self.figures.limiter_wait(self.ctx.channel_id, time.perf_counter() - t)
            self.spans["groups"] = self.spans.get("groups", 0) + 1
            if not taken or self.stop.is_set():  # paused or cancelled first: these rows were never sent
                self.results.extend(Outcome(r, "requeue") for r in group)
                for _ in group:
                    self.in_flight.release()
                continue
            for r in group:
                task = asyncio.create_task(self.send(r))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)

    async def send(self, row: Claimed) -> None:
        """One request (its rate token already taken); errors may cool the channel down or stop the job."""
        outcome: Outcome | None = None
        try:
            started = time.perf_counter()
            outcome, exc = await send_one(self.messenger, self.ctx, row)
            if exc is not None or outcome.kind != "failed":  # a failure without an error sent no request
                self.figures.send_latency(self.ctx.channel_id, time.perf_counter() - started)
            if exc is None:
                if outcome.kind == "sent":
                    await self._after_success(outcome)
            elif not exc.ambiguous:
                outcome = await self._after_error(row, outcome, exc)
        finally:
            if outcome is not None:
                self.results.append(outcome)
            self.in_flight.release()

    async def _after_success(self, outcome: Outcome) -> None:
        try:  # Redis lost: only the pacing misses this send, the outcome is stored anyway
            if self.outage_seen or self.loop.time() - self.outage_cleared_at >= 1.0:
                self.outage_seen, self.outage_cleared_at = False, self.loop.time()
                await pacing.outage_over(self.aredis, self.cid)
            if outcome.held:
                await pacing.hold(self.aredis, self.cid, [outcome.row.id])
        except Exception:
            log.warning("campaign %s: could not record a send's pacing in Redis", self.cid, exc_info=True)

    async def _after_error(self, row: Claimed, outcome: Outcome, exc: WhatsAppApiError) -> Outcome:
        """What an unambiguous WhatsApp error does beyond the row: throttle, outage, pause, template re-sync."""
        c = exc.classification
        if c.rate_limited:
            wait = exc.retry_after or self.config.rate_limit_cooldown_s
            with contextlib.suppress(Exception):  # Redis lost: this job stops at its next group anyway
                wait = await self.limiter.throttled(self.config, exc.retry_after)
            outcome.next_attempt_at = utcnow() + timedelta(seconds=wait)
        elif c.server_trouble:
            self.outage_seen = True
            lasted: float | None = None
            with contextlib.suppress(Exception):
                lasted = await pacing.outage_seconds(self.aredis, self.cid)
            outcome = classify_error(row, exc, self.config, utcnow(), lasted)
            if lasted is not None and lasted >= self.config.outage_pause_s:
                self.request_stop(outage_reason(exc, lasted))
        reason = stop_reason(exc)
        if reason:
            self.request_stop(reason)
            if c.template_paused and self.resync is None:
                self.resync = asyncio.create_task(
                    asyncio.to_thread(resync_channel_templates, self.engine, self.ctx.channel_id)
                )
        return outcome

    async def _wait_while_held(self) -> None:
        """Take no new rows while a send of this campaign is held by WhatsApp (see `pacing`)."""
        while not self.stop.is_set():
            try:
                held = await pacing.held_count(self.aredis, self.cid, self.config.held_wait_max_s)
            except Exception:  # Redis lost: no pacing rather than no sending
                return
            if not held:
                return
            if self.loop.time() >= self.deadline:
                self.request_stop()  # the job ends; the next one (re-enqueued: rows are due) waits on
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), 0.5)

    async def flush(self) -> None:
        """Store the outcomes gathered so far (and the pause reason, once); on failure keep them and raise."""
        reason = "" if self.reason_stored else self.pause_reason
        if not self.results and not reason:
            return
        batch = self.results[:]
        del self.results[: len(batch)]
        t = time.perf_counter()
        try:
            await asyncio.to_thread(store_outcomes, self.engine, self.cid, batch, utcnow(), reason)
        except Exception:
            # The database is unreachable: keep these outcomes (the wamids we hold) for the next flush;
            # dropped, their rows would stay `sending` and end `unknown` although we know what happened.
            self.results[:0] = batch
            raise
        self.reason_stored = self.reason_stored or bool(reason)
        for o in batch:
            name = STAT_FOR_KIND[o.kind]
            setattr(self.stats, name, getattr(self.stats, name) + 1)
        self.spans["store_s"] = self.spans.get("store_s", 0) + time.perf_counter() - t
        for o in batch:
            if o.kind in _FIGURE_FOR_KIND:
                self.figures.message(self.ctx.channel_id, _FIGURE_FOR_KIND[o.kind])
        await self.figures.flush_async(self.aredis)  # never raises
        attempted = sum(1 for o in batch if o.kind in ("sent", "failed", "unknown"))
        failed = sum(1 for o in batch if o.kind == "failed")
        if attempted:
            key = error_stats_key(self.cid)
            try:
                async with self.aredis.pipeline(transaction=False) as pipe:
                    pipe.hincrby(key, "attempted", attempted)
                    pipe.hincrby(key, "failed", failed)
                    pipe.expire(key, 7 * 24 * 3600)
                    await pipe.execute()
            except Exception:  # the outcomes are stored; only the error-ratio figures miss this batch
                log.warning("campaign %s: could not count outcomes in Redis", self.cid, exc_info=True)

    async def flusher(self) -> None:
        # Not cancelled mid-write: it stops when told, after one last flush.
        while not self.done.is_set():
            try:
                await asyncio.wait_for(self.done.wait(), 0.25)
            except TimeoutError:
                pass
            try:
                await self.flush()
            except Exception:  # kept for the next flush; a dead flusher would store nothing more
                log.warning("campaign %s: could not store outcomes; retrying", self.cid, exc_info=True)

    async def watcher(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            try:  # a Redis or database blip must not end the watch: pause/cancel must still be seen
                await self.aredis.set(alive_key(self.cid), "1", ex=int(self.config.alive_ttl_s))
                status = await asyncio.to_thread(campaign_status, self.engine, self.cid)
                if status != SENDING:
                    self.request_stop()
                else:
                    reason = error_ratio_reason(await self.aredis.hgetall(error_stats_key(self.cid)), self.config)
                    if reason:
                        self.request_stop(reason)
            except Exception:
                log.warning("campaign %s: watcher could not check the campaign", self.cid, exc_info=True)


async def run_batch(
    engine: Engine, ctx: SendContext, redis_url: str, *, messenger: Messenger | None = None
) -> JobStats:
    """Run one job's worth of the campaign (see `BatchRunner`)."""
    return await BatchRunner(engine, ctx, redis_url, messenger=messenger).run()
