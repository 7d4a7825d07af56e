"""WhatsApp status webhooks: store first, apply in batches.

Two steps, so the HTTP answer stays fast and no acknowledged event can be lost:

1. `store_events()` runs inside the webhook request: one transaction appends every status to
   `webhook_status_events` (INSERT .. ON CONFLICT DO NOTHING on the unique (message_id, status), so
   Meta's duplicates vanish in the database, not in Python) and records inbound messages
   (`app.services.inbound.opt_out`). Once it commits, the request answers 200. That table is the durable queue.
2. `apply_pending_statuses()` takes unapplied events that match a recipient row, moves each
   recipient forward only (`recipient_moves_forward`: sent < delivered < read, failed terminal), sets
   the timestamps, stamps the events `applied_at`, and refreshes the touched campaigns' counters. A
   crash between the two steps only delays: unapplied events are replayed by the next pass.

Matching: by wamid, or — for a row a crash left in `sending`/`unknown` without a wamid — by our
recipient id carried in `biz_opaque_callback_data` (the wamid is then stored on the row). Sends carry
`hc:<campaign>:<row>` (issue 12): the campaign must match too; "123" and "r:123" of rows sent before that
change are still read. An event
whose id matches nothing stays unapplied and is matched by a later pass, once the sender stored that
wamid (a status can arrive before the worker wrote the id of the message it just sent).

Which channel may say what (issue 13, cross-channel forgery): an item is stored only when its
`phone_number_id` belongs to a channel whose app secret signed the body (`channel_for` returns None
otherwise, and the item is refused); a stored status applies only to recipients of campaigns on that
same channel, and only to rows already posted (`POSTED`: never to a `queued` row, which a forged
`failed` would otherwise stop from being sent). Wamids and our recipient ids are guessable, the
channel's secret is not. Refused items are kept as rejected (an audit row `webhook.rejected`), never
applied; events that never match a recipient (an unknown wamid) are deleted after
`SendingConfig.orphan_event_retention_s` (by the workers' sweeper, `sending.sweeper.expire_orphan_events`).

A `failed` status is judged with the same table as a send-time error (issue 12, `account_failures`):
131050 unsubscribes the contact from WhatsApp marketing, template-wide and account-wide codes pause the
campaign, and every failure counts in the campaign's error ratio (the auto-pause). Any status of a row
whose send WhatsApp held (`sending.pacing`) releases the campaign's pacing.

Concurrency: the pass holds the write lock from its first read (SQLite `BEGIN IMMEDIATE`; on
PostgreSQL the matched recipient rows are locked with `FOR UPDATE SKIP LOCKED`), so a sending worker
cannot change a row between our read and our write. Applying is idempotent, so two web processes
running passes at once only waste a little work.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import bindparam, select, text, update
from sqlmodel import Session

from app.domain.campaign_status import (
    R_DELIVERED,
    R_FAILED,
    R_READ,
    R_SENDING,
    R_SENT,
    R_SKIPPED,
    R_UNKNOWN,
    SENDING,
    recipient_moves_forward,
)
from app.domain.messaging_limits import failure_status
from app.models import Campaign, CampaignRecipient, ContactIdentity, WebhookStatusEvent
from app.services.accounts import audit
from app.services.campaigns.trial_send import apply_trial_statuses
from app.services.inbound import opt_out
from app.services.inbound.inserts import insert_ignoring_duplicates
from app.services.sending import pacing
from app.services.sending import progress as campaign_progress
from app.services.sending.config import sending_config
from app.services.sending.keys import campaign_id_from_callback, error_stats_key, recipient_id_from_callback
from app.services.sending.outcomes import error_ratio_reason, pause_campaign_conn
from app.timeutil import utcnow
from app.whatsapp.errors import WhatsAppError, classify
from app.whatsapp.webhooks import StatusUpdate, WebhookEvents

log = logging.getLogger(__name__)

DEFAULT_BATCH = 500  # per transaction: short enough that a webhook waiting for the writer lock stays fast
_TIMESTAMP_FIELD = {R_SENT: "sent_at", R_DELIVERED: "delivered_at", R_READ: "read_at", R_FAILED: "failed_at"}
# Fold a recipient's events in the order the statuses happen, whatever order they arrived in.
_ORDER = {R_SENT: 0, R_DELIVERED: 1, R_READ: 2, R_FAILED: 3}

EVENTS = WebhookStatusEvent.__table__
RECIPIENTS = CampaignRecipient.__table__
CAMPAIGNS = Campaign.__table__
# Rows whose message was posted to WhatsApp (or may have been): the only ones a status can be about.
# `queued` and `skipped` rows were never posted; a status naming them is a forgery or a mistake.
POSTED = (R_SENDING, R_SENT, R_UNKNOWN, R_DELIVERED, R_READ, R_FAILED)


@dataclass
class StoreResult:
    statuses: int = 0  # status items stored (duplicates included)
    messages: int = 0
    opted_out: list[str] = field(default_factory=list)
    refused: int = 0  # items naming a phone number no channel that signed the body owns
    rejected: str = ""  # why a signed body was malformed and nothing of it was stored (answered 400)


@dataclass
class ApplyResult:
    applied: int = 0  # events stamped applied_at (whether or not they moved a recipient)
    recipients_changed: int = 0
    campaigns: set[int] = field(default_factory=set)
    # (channel id, status, received_at) of each applied event: the /metrics counters and apply lag
    events: list[tuple[int | None, str, datetime | None]] = field(default_factory=list)


def _status_row(status: StatusUpdate, channel_id: int | None, now: datetime) -> dict:
    error = status.errors[0] if status.errors else None
    return {
        "channel_id": channel_id,
        "message_id": status.message_id[:128],
        "status": status.status[:16],
        "recipient_id": recipient_id_from_callback(status.biz_opaque_callback_data),
        "provider_timestamp": status.timestamp,
        "error_code": error.code if error else None,
        "error_title": (error.title or error.message or "")[:500] if error else "",
        "payload": dict(status.raw),
        "received_at": now,
        "applied_at": None,
    }


def store_events(session: Session, events: WebhookEvents, channel_for: Callable[[str], int | None]) -> StoreResult:
    """Append the statuses and record inbound messages (caller commits; nothing is applied here).

    `channel_for(phone_number_id)` names the channel each item came through: one whose app secret
    signed the body and which owns that number, or None, and then the item is refused (not stored)."""
    now = utcnow()
    result = StoreResult()
    rows, refused = [], []
    for status in events.statuses:
        channel_id = channel_for(status.phone_number_id)
        if channel_id is None:
            result.refused += 1
            refused.append(status)
            continue
        rows.append(_status_row(status, channel_id, now))
    result.statuses = len(rows)
    if rows:
        session.execute(insert_ignoring_duplicates(session, EVENTS), rows)
    for message in events.messages:
        channel_id = channel_for(message.phone_number_id)
        if channel_id is None:
            result.refused += 1
            continue
        result.messages += 1
        outcome = opt_out.record_inbound(session=session, message=message, channel_id=channel_id)
        if outcome.unsubscribed:
            result.opted_out.append(outcome.address)
    if result.refused:
        log.warning(
            "webhook: refused %d item(s) naming a phone number id the signing channel does not own", result.refused
        )
        _record_refused(session, refused, result.refused)
    return result


def _record_refused(session: Session, statuses: list[StatusUpdate], count: int) -> None:
    """Keep refused items as rejected (one audit row per body, never applied): who sent what for which number."""
    audit.record(
        session=session,
        actor=None,
        actor_email="whatsapp",
        action="webhook.rejected",
        outcome="refused",
        target_type="channel",
        target_id="",
        detail={
            "reason": "phone number id not owned by a channel whose secret signed the body",
            "items": count,
            "phone_number_ids": sorted({s.phone_number_id for s in statuses})[:20],
            "statuses": [
                {"id": s.message_id[:128], "status": s.status[:16], "phone_number_id": s.phone_number_id[:32]}
                for s in statuses[:20]
            ],
        },
    )


REJECTED_EXCERPT = 500  # characters of a rejected body kept for whoever investigates it


def record_rejected(session: Session, raw: bytes, reason: str, channel_ids: list[int]) -> StoreResult:
    """Keep a signed but malformed body as rejected (issue 13 item 14): an audit row `webhook.rejected`
    with the reason, its size, SHA-256 and first characters, so an admin can see it on the Audit log page;
    none of it is applied. Caller commits."""
    audit.record(
        session=session,
        actor=None,
        actor_email="whatsapp",
        action="webhook.rejected",
        outcome="refused",
        target_type="channel",
        target_id=channel_ids[0] if channel_ids else "",
        detail={
            "reason": reason[:300],
            "bytes": len(raw),
            "sha256": hashlib.sha256(raw).hexdigest(),
            "excerpt": raw[:REJECTED_EXCERPT].decode("utf-8", errors="replace"),
            "channels": channel_ids,
        },
    )
    log.warning("webhook: rejected a signed but malformed body (%d bytes): %s", len(raw), reason)
    return StoreResult(rejected=reason or "malformed")


# SQLite allows one writer at a time, and a writer that finds the database locked sleeps in SQLite's
# busy handler (1, 2, 5, ... 100 ms steps): with 16 webhook requests writing at once, p50 latency was
# ~500 ms. Taking turns on a lock in the process first makes each write a few ms (PostgreSQL: no lock).
_SQLITE_WRITER = threading.Lock()


@contextmanager
def one_writer(session: Session) -> Iterator[None]:
    """Hold for the whole write transaction (begin to commit) when the database is SQLite."""
    if session.get_bind().dialect.name != "sqlite":
        yield
        return
    with _SQLITE_WRITER:
        yield


# --- applying -----------------------------------------------------------------------------------


def lock_for_writing(session: Session) -> None:
    """SQLite: take the write lock before reading, so no writer slips in between read and update."""
    if session.get_bind().dialect.name != "sqlite":
        return
    dbapi = session.connection().connection.dbapi_connection
    if not dbapi.in_transaction:
        session.execute(text("BEGIN IMMEDIATE"))


_COLUMNS = (
    EVENTS.c.id,
    EVENTS.c.message_id,
    EVENTS.c.status,
    EVENTS.c.provider_timestamp,
    EVENTS.c.error_code,
    EVENTS.c.error_title,
    EVENTS.c.received_at,
    EVENTS.c.channel_id.label("event_channel_id"),
    RECIPIENTS.c.id.label("rid"),
    RECIPIENTS.c.campaign_id,
    RECIPIENTS.c.address,
    RECIPIENTS.c.status.label("rstatus"),
    RECIPIENTS.c.message_id.label("rwamid"),
    RECIPIENTS.c.sent_at,
    RECIPIENTS.c.delivered_at,
    RECIPIENTS.c.read_at,
    RECIPIENTS.c.failed_at,
)


def _matching(session: Session, limit: int) -> list:
    postgres = session.get_bind().dialect.name == "postgresql"

    def run(query):
        # Only recipients of a campaign on the channel the event came through, and only posted rows.
        query = query.join(CAMPAIGNS, CAMPAIGNS.c.id == RECIPIENTS.c.campaign_id).where(
            CAMPAIGNS.c.channel_id == EVENTS.c.channel_id, RECIPIENTS.c.status.in_(POSTED)
        )
        query = query.where(EVENTS.c.applied_at.is_(None)).order_by(EVENTS.c.id).limit(limit)
        if postgres:
            query = query.with_for_update(of=RECIPIENTS, skip_locked=True)
        return session.execute(query).all()

    by_wamid = run(select(*_COLUMNS).join(RECIPIENTS, RECIPIENTS.c.message_id == EVENTS.c.message_id))
    by_callback = run(
        select(*_COLUMNS, EVENTS.c.payload)
        .join(RECIPIENTS, RECIPIENTS.c.id == EVENTS.c.recipient_id)
        .where(RECIPIENTS.c.message_id.is_(None))
    )
    seen = {row.id for row in by_wamid}
    return list(by_wamid) + [row for row in by_callback if row.id not in seen and _same_campaign(row)]


def _same_campaign(row) -> bool:
    """A namespaced callback names its campaign: a row of another campaign is not the one it means."""
    payload = row.payload if isinstance(row.payload, dict) else {}
    named = campaign_id_from_callback(payload.get("biz_opaque_callback_data"))
    return named is None or named == row.campaign_id


def _fold(rows: list, now: datetime) -> dict | None:
    """The recipient's new column values after these events, or None when nothing changes."""
    first = rows[0]
    current = {
        "status": first.rstatus,
        "message_id": first.rwamid,
        "sent_at": first.sent_at,
        "delivered_at": first.delivered_at,
        "read_at": first.read_at,
        "failed_at": first.failed_at,
    }
    new = dict(current)
    error: tuple[int | None, str] | None = None
    if new["message_id"] is None:  # matched by our callback data: this is the message we sent
        new["message_id"] = first.message_id
    for event in sorted(rows, key=lambda e: (_ORDER.get(e.status, 9), e.id)):
        if event.message_id != new["message_id"]:
            continue  # a second wamid claiming the same recipient: keep the first, ignore the rest
        field_name = _TIMESTAMP_FIELD.get(event.status)
        # A failed row keeps only its failure time; a late "delivered" for it is not a fact we show.
        settled = new["status"] in (R_FAILED, R_SKIPPED)
        if (
            field_name
            and new[field_name] is None
            and not settled
            and (event.status != R_FAILED or recipient_moves_forward(new["status"], R_FAILED))
        ):
            new[field_name] = event.provider_timestamp or event.received_at or now
        if recipient_moves_forward(new["status"], event.status):
            # 131049 (Meta's per-user marketing limit) is its own outcome, "limited", not a failure
            new["status"] = failure_status(event.error_code) if event.status == R_FAILED else event.status
            if event.status == R_FAILED:
                error = (event.error_code, event.error_title or "")
    if new == current and error is None:
        return None
    values = {
        "b_id": first.rid,
        **{f"b_{k}": v for k, v in new.items()},
        "b_updated_at": now,
        "b_error_code": None,
        "b_error_title": None,
        "b_has_error": error is not None,
    }
    if error is not None:
        values["b_error_code"], values["b_error_title"] = error[0], error[1][:500]
    return values


_UPDATE = (
    RECIPIENTS.update()
    .where(RECIPIENTS.c.id == bindparam("b_id"))
    .values(
        status=bindparam("b_status"),
        message_id=bindparam("b_message_id"),
        sent_at=bindparam("b_sent_at"),
        delivered_at=bindparam("b_delivered_at"),
        read_at=bindparam("b_read_at"),
        failed_at=bindparam("b_failed_at"),
        updated_at=bindparam("b_updated_at"),
    )
)
_UPDATE_FAILED = _UPDATE.values(error_code=bindparam("b_error_code"), error_title=bindparam("b_error_title"))


def apply_pending_statuses(session: Session, limit: int = DEFAULT_BATCH, *, refresh: bool = True) -> ApplyResult:
    """Apply up to `limit` stored events that match a recipient; commit is the caller's.

    With `refresh`, the touched campaigns' counters are recomputed (and a Sending campaign whose rows
    are all settled finishes); the background applier passes False and refreshes at most once a
    second per campaign instead, because that aggregate is the costly part on a large campaign."""
    result = ApplyResult()
    lock_for_writing(session)
    result.applied += apply_trial_statuses(session, limit)  # trial sends (issue 5) are not recipients
    rows = _matching(session, max(1, int(limit)))
    if not rows:
        return result
    now = utcnow()
    by_recipient: dict[int, list] = defaultdict(list)
    for row in rows:
        by_recipient[row.rid].append(row)
    plain, failed = [], []
    failures: list[Failure] = []
    for recipient_rows in by_recipient.values():
        values = _fold(recipient_rows, now)
        if values is not None:
            first = recipient_rows[0]
            if values.pop("b_has_error"):
                failed.append(values)
                failures.append(
                    Failure(first.campaign_id, first.address, values["b_error_code"], values["b_error_title"])
                )
            else:
                plain.append(values)
            result.campaigns.add(first.campaign_id)
    if plain:
        session.execute(
            _UPDATE, [{k: v for k, v in p.items() if k not in ("b_error_code", "b_error_title")} for p in plain]
        )
    if failed:
        session.execute(_UPDATE_FAILED, failed)
    result.recipients_changed = len(plain) + len(failed)
    ids = [row.id for row in rows]
    for start in range(0, len(ids), 900):
        session.execute(
            update(WebhookStatusEvent).where(WebhookStatusEvent.id.in_(ids[start : start + 900])).values(applied_at=now)
        )
    result.applied = len(ids)
    result.events = [(row.event_channel_id, row.status, row.received_at) for row in rows]
    account_failures(session, failures, now)
    _release_held(by_recipient)
    if refresh:
        refresh_campaigns(session, result.campaigns)
    return result


def refresh_campaigns(session: Session, campaign_ids: Iterable[int]) -> list[int]:
    """Recompute counters of these campaigns; finish the Sending ones that are done. Returns finished ids."""
    ids = sorted(set(campaign_ids))
    if not ids:
        return []
    finished = []
    statuses = dict(session.execute(select(Campaign.id, Campaign.status).where(Campaign.id.in_(ids))).all())
    for campaign_id in ids:
        if statuses.get(campaign_id) != SENDING:
            campaign_progress.refresh_counters(session, campaign_id)
        elif campaign_progress.finish_if_done(session, campaign_id):  # refreshes the counters too
            finished.append(campaign_id)
    return finished


# --- what a failed status means beyond its row (issue 12) ---------------------------------------


@dataclass
class Failure:
    campaign_id: int
    address: str
    code: int | None
    title: str


def _redis():
    from app.redis_conn import get_redis  # lazily: applying must work (without pacing) when Redis is away

    return get_redis()


def account_failures(session: Session, failures: list[Failure], now: datetime) -> None:
    """A failed status is classified like a send-time error: 131050 unsubscribes the person from WhatsApp
    marketing, template-wide and account-wide codes pause the campaign, and each failure counts in the
    campaign's error ratio, which pauses it past `max_error_ratio` (the job's watcher reads the same figures)."""
    if not failures:
        return
    config = sending_config()
    unsubscribe, reasons = set(), {}
    per_campaign: dict[int, int] = defaultdict(int)
    for f in failures:
        per_campaign[f.campaign_id] += 1
        c = classify(WhatsAppError(code=f.code, title=f.title or ""))
        if c.unsubscribe_contact:
            unsubscribe.add(f.address)
        if c.stops_campaign and f.campaign_id not in reasons:
            label = f"#{f.code} {f.title}".strip() if f.code is not None else (f.title or "an error")
            what = "the template" if c.template_paused else "the account"
            reasons[f.campaign_id] = (
                f"Paused automatically: WhatsApp reported {label} for a message already sent; "
                f"it concerns {what}, so every other message would fail the same way. Fix it, then resume."
            )
    if unsubscribe:
        ident = ContactIdentity.__table__
        session.execute(
            update(ident)
            .where(
                ident.c.channel_type == "whatsapp",
                ident.c.address.in_(sorted(unsubscribe)),
                ident.c.subscribed.is_(True),
            )
            .values(subscribed=False, subscription_changed_at=now)
        )
    try:
        client = _redis()
        pipe = client.pipeline(transaction=False)
        for cid, n in per_campaign.items():
            pipe.hincrby(error_stats_key(cid), "failed", n)
            pipe.hgetall(error_stats_key(cid))
        answers = pipe.execute()
        for i, cid in enumerate(per_campaign):
            reason = error_ratio_reason(answers[2 * i + 1], config)
            if reason:
                reasons.setdefault(cid, reason)
    except Exception:  # the statuses are applied either way; only the ratio misses them
        log.warning("webhook: could not count failed statuses in Redis", exc_info=True)
    connection = session.connection()
    for cid, reason in reasons.items():
        pause_campaign_conn(connection, cid, reason, now)


def _release_held(by_recipient: dict[int, list]) -> None:
    by_campaign: dict[int, list[int]] = defaultdict(list)
    for rid, rows in by_recipient.items():
        by_campaign[rows[0].campaign_id].append(rid)
    try:
        pacing.release(_redis(), by_campaign)
    except Exception:
        log.warning("webhook: could not release held sends in Redis", exc_info=True)
