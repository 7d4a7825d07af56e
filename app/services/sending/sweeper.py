"""Crash safety, run every few seconds by the workers' periodic tick.

1. Rows left `sending` longer than the grace period (the job that claimed them died: SIGKILL, OOM,
   a lost machine) are settled from the status webhooks we stored (matched by our recipient id, which
   every send carries as `biz_opaque_callback_data`); rows that provably never left (absent from the
   campaign's "posted" set in Redis, which a job fills just before each request, and which is trusted
   only within one Redis lifetime) are queued again; the rest are marked `unknown`. Those are never
   resent: WhatsApp has no idempotency key, so a resend could reach the person twice.
2. Sending campaigns with queued rows (or an audience freeze not finished: `freeze.py`) but no sign of a
   live job (the jobs' "alive" key in Redis expired, or Redis was restarted or flushed) get their send
   jobs enqueued again from the database; a freeze whose freezer died resumes in one of them.
3. Counters are refreshed and finished campaigns closed.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, func, select, update
from sqlmodel import Session

from app.db import get_engine
from app.domain.campaign_status import (
    R_DELIVERED,
    R_FAILED,
    R_QUEUED,
    R_READ,
    R_SENDING,
    R_SENT,
    R_UNKNOWN,
    SENDING,
    recipient_moves_forward,
)
from app.models import Campaign, CampaignRecipient, WebhookStatusEvent
from app.redis_conn import get_redis
from app.services.sending.claims import begin_write
from app.services.sending.config import SendingConfig, sending_config
from app.services.sending.job import enqueue_lanes
from app.services.sending.keys import alive_key, campaign_id_from_callback, posted_epoch_key, posted_key
from app.services.sending.progress import finish_if_done
from app.timeutil import utcnow

log = logging.getLogger(__name__)
R = CampaignRecipient.__table__
E = WebhookStatusEvent.__table__
C = Campaign.__table__
UNKNOWN_TITLE = "The worker stopped while sending; no status from WhatsApp yet. Not resent."


def _best_event(events: list) -> object | None:
    best, best_status = None, R_SENDING
    for event in events:
        if recipient_moves_forward(best_status, event.status):
            best, best_status = event, event.status
    return best


def _belongs(event, campaign_id: int, channel_id: int | None) -> bool:
    """Only a status that came through the campaign's own channel, naming this campaign when its callback
    data names one (issue 12: matching bound to the channel), settles a row."""
    if event.channel_id != channel_id:
        return False
    payload = event.payload if isinstance(event.payload, dict) else {}
    named = campaign_id_from_callback(payload.get("biz_opaque_callback_data"))
    return named is None or named == campaign_id


def expire_orphan_events(engine, now: datetime, config: SendingConfig, limit: int = 10_000) -> int:
    """Status events that never matched a recipient (an unknown wamid) and are older than the retention
    period are deleted (issue 12); how many."""
    cutoff = now - timedelta(seconds=config.orphan_event_retention_s)
    with engine.connect() as conn:
        begin_write(conn)
        ids = list(
            conn.execute(
                select(E.c.id).where(E.c.applied_at.is_(None), E.c.received_at < cutoff).limit(limit)
            ).scalars()
        )
        for start in range(0, len(ids), 900):
            conn.execute(E.delete().where(E.c.id.in_(ids[start : start + 900])))
        conn.commit()
    removed = len(ids)
    if removed:
        log.info("sweeper: %d orphan status events older than the retention period removed", removed)
    return removed


def settle_stuck_rows(engine, now: datetime, config: SendingConfig, redis_client=None, limit: int = 5000) -> set[int]:
    """Reconcile or mark `unknown` the rows stuck in `sending`; returns the campaigns touched."""
    cutoff = now - timedelta(seconds=config.stuck_grace_s)
    with engine.connect() as conn:
        stuck = conn.execute(
            select(R.c.id, R.c.campaign_id, R.c.claimed_at, C.c.channel_id)
            .join(C, C.c.id == R.c.campaign_id)
            .where(R.c.status == R_SENDING, R.c.message_id.is_(None), R.c.claimed_at < cutoff)
            .limit(limit)
        ).all()
        if not stuck:
            return set()
        ids = [r.id for r in stuck]
        owner = {r.id: (r.campaign_id, r.channel_id) for r in stuck}
        events: dict[int, list] = {}
        for i in range(0, len(ids), 900):
            for ev in conn.execute(
                select(
                    E.c.recipient_id,
                    E.c.message_id,
                    E.c.status,
                    E.c.error_code,
                    E.c.error_title,
                    E.c.channel_id,
                    E.c.payload,
                ).where(E.c.recipient_id.in_(ids[i : i + 900]))
            ):
                if _belongs(ev, *owner[ev.recipient_id]):
                    events.setdefault(ev.recipient_id, []).append(ev)
    never_posted = _never_posted(stuck, redis_client)
    settled, unknown, requeue = [], [], []
    for rid in ids:
        best = _best_event(events.get(rid, []))
        if best is None and rid in never_posted:
            requeue.append({"rid": rid, "now": now})
        elif best is None:
            unknown.append({"rid": rid, "now": now})
        else:
            settled.append(
                {
                    "rid": rid,
                    "now": now,
                    "st": best.status,
                    "wamid": best.message_id,
                    "code": best.error_code if best.status == R_FAILED else None,
                    "title": (best.error_title or "") if best.status == R_FAILED else "",
                    "sent_at": now if best.status in (R_SENT, R_DELIVERED, R_READ) else None,
                    "failed_at": now if best.status == R_FAILED else None,
                }
            )
    with engine.connect() as conn:
        begin_write(conn)
        if settled:
            conn.execute(
                update(R)
                .where(R.c.id == bindparam("rid"), R.c.status == R_SENDING)
                .values(
                    status=bindparam("st"),
                    message_id=bindparam("wamid"),
                    error_code=bindparam("code"),
                    error_title=bindparam("title"),
                    sent_at=bindparam("sent_at"),
                    failed_at=bindparam("failed_at"),
                    updated_at=bindparam("now"),
                ),
                settled,
            )
        if unknown:
            conn.execute(
                update(R)
                .where(R.c.id == bindparam("rid"), R.c.status == R_SENDING)
                .values(status=R_UNKNOWN, error_title=UNKNOWN_TITLE, updated_at=bindparam("now")),
                unknown,
            )
        if requeue:
            conn.execute(
                update(R)
                .where(R.c.id == bindparam("rid"), R.c.status == R_SENDING)
                .values(status=R_QUEUED, attempts=R.c.attempts - 1, claimed_at=None, updated_at=bindparam("now")),
                requeue,
            )
        conn.commit()
    if settled or unknown or requeue:
        log.warning(
            "sweeper: stuck rows: %d settled from webhooks, %d never posted (queued again), %d unknown",
            len(settled),
            len(requeue),
            len(unknown),
        )
    if requeue and redis_client is not None:
        for cid in sorted({r.campaign_id for r in stuck if r.id in never_posted}):
            enqueue_lanes(cid, 1, redis_client=redis_client, config=config)
    return {r.campaign_id for r in stuck}


# Rows claimed within this long after the posted set's epoch began are not trusted to it (clock
# skew between machines; and a row claimed before a flush must never look "never posted").
_EPOCH_MARGIN_S = 1.0


def _never_posted(stuck: list, redis_client) -> set[int]:
    """Ids of stuck rows that provably never left: the campaign's posted set is complete for this
    Redis lifetime (same run_id, not flushed) since before they were claimed, and lacks them."""
    if redis_client is None:
        return set()
    out: set[int] = set()
    try:
        run_id = redis_client.info("server").get("run_id", "")
        for cid in {r.campaign_id for r in stuck}:
            epoch = redis_client.get(posted_epoch_key(cid))
            epoch = epoch.decode() if isinstance(epoch, bytes) else epoch
            if not epoch or epoch.split(":")[0] != run_id:
                continue
            since = datetime.fromtimestamp(float(epoch.split(":")[1]) + _EPOCH_MARGIN_S, UTC)
            candidates = [r for r in stuck if r.campaign_id == cid and r.claimed_at and _aware(r.claimed_at) > since]
            if not candidates:
                continue
            flags = redis_client.smismember(posted_key(cid), [r.id for r in candidates])
            out.update(r.id for r, posted in zip(candidates, flags, strict=False) if not posted)
    except Exception:  # Redis unreachable: nothing is provable, everything stuck becomes unknown
        log.exception("sweeper: could not read the posted sets")
        return set()
    return out


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def reenqueue_orphans(engine, redis_client, config: SendingConfig) -> list[int]:
    """Sending campaigns with queued rows, or an audience freeze to finish, and no live job: enqueue their
    send jobs again (the first of them resumes the freeze after its cursor once the lease is free)."""
    with engine.connect() as conn:
        campaigns = conn.execute(select(Campaign.id, Campaign.freezing).where(Campaign.status == SENDING)).all()
        orphans = []
        for cid, freezing in campaigns:
            if redis_client.exists(alive_key(cid)):
                continue
            queued = (
                freezing
                or conn.execute(
                    select(func.count()).select_from(R).where(R.c.campaign_id == cid, R.c.status == R_QUEUED)
                ).scalar()
            )
            if queued:
                orphans.append(cid)
    for cid in orphans:
        log.warning("sweeper: campaign %s is Sending with queued rows and no live job; re-enqueueing", cid)
        enqueue_lanes(cid, config.lanes, redis_client=redis_client, config=config)
    return orphans


def _orphans_due(redis_client, config: SendingConfig) -> bool:
    """At most once per `orphan_event_sweep_s` across all workers (a Redis NX key; without Redis: always)."""
    if redis_client is None:
        return True
    return bool(redis_client.set("hubcast:sweeper:orphan-events", "1", nx=True, ex=int(config.orphan_event_sweep_s)))


def sweep(now: datetime | None = None, config: SendingConfig | None = None, redis_client=None) -> dict:
    now = now or utcnow()
    config = config or sending_config()
    engine = get_engine()
    if redis_client is None:
        try:
            redis_client = get_redis()
        except Exception:
            log.exception("sweeper: no Redis")
    touched = settle_stuck_rows(engine, now, config, redis_client)
    try:
        if _orphans_due(redis_client, config):
            expire_orphan_events(engine, now, config)
    except Exception:
        log.exception("sweeper: could not expire orphan status events")
    orphans: list[int] = []
    try:
        orphans = reenqueue_orphans(engine, redis_client, config)
    except Exception:
        log.exception("sweeper: could not check send jobs in Redis")
    with engine.connect() as conn:
        sending = set(conn.execute(select(Campaign.id).where(Campaign.status == SENDING)).scalars())
    finished = []
    for cid in sorted(sending | touched):
        with Session(engine) as session:
            if engine.dialect.name == "sqlite":
                session.connection().exec_driver_sql("BEGIN IMMEDIATE")
            if finish_if_done(session, cid, now=now):
                finished.append(cid)
            session.commit()
    return {"touched": sorted(touched), "reenqueued": orphans, "finished": finished}
