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

Speed (issue 16 §4: 6,000 statuses/s, a 50,000 burst applied within 15 s): events are inserted and
recipients updated through the driver (SQLAlchemy's per-value binding cost more than the database's
work), one UPDATE per set of changed columns (PostgreSQL: `UPDATE .. FROM unnest(arrays)`), the
backlog is read from a partial index of unapplied events (0017), and the callback and trial lookups
only look at the window of the backlog the wamid lookup walked, so a pass costs the same whatever the
backlog's size.

Concurrency: the pass holds the write lock from its first read (SQLite `BEGIN IMMEDIATE`; on
PostgreSQL the matched recipient rows are locked with `FOR UPDATE SKIP LOCKED`), so a sending worker
cannot change a row between our read and our write. Applying is idempotent, so two web processes
running passes at once only waste a little work.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select, text, type_coerce, update
from sqlalchemy.types import NullType
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
from app.services.sending import pacing
from app.services.sending import progress as campaign_progress
from app.services.sending.config import sending_config
from app.services.sending.keys import (
    campaign_id_from_callback,
    error_stats_key,
    held_key,
    recipient_id_from_callback,
)
from app.services.sending.outcomes import error_ratio_reason, pause_campaign_conn
from app.timeutil import utcnow
from app.whatsapp.errors import WhatsAppError, classify
from app.whatsapp.webhooks import StatusUpdate, WebhookEvents

log = logging.getLogger(__name__)

WINDOW_FACTOR = 2  # a pass first looks at the oldest 2 x limit unapplied events (`_matching`)
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


_INSERT_COLUMNS = (
    "channel_id",
    "message_id",
    "status",
    "recipient_id",
    "provider_timestamp",
    "error_code",
    "error_title",
    "payload",
    "received_at",
)


_PG_RECORD_TYPES = (
    "integer",
    "varchar",
    "varchar",
    "integer",
    "timestamptz",
    "integer",
    "varchar",
    "json",
)


def _insert_sql(dialect: str) -> str:
    """The events INSERT .. ON CONFLICT DO NOTHING as driver SQL: for sqlite3 one row per execution
    (executemany); for psycopg one statement reading every row from ONE JSON array (json_to_recordset).
    A row per statement meant a round trip's worth of pipeline work per status, and columns bound as
    arrays made psycopg escape each payload's JSON into array text (a fifth of a web process's CPU while
    it received 2,000 statuses/s); json.dumps of the whole body is done in C, and PostgreSQL parses it once."""
    columns = ", ".join(_INSERT_COLUMNS)
    if dialect == "sqlite":
        marks = ", ".join(["?"] * len(_INSERT_COLUMNS))
        return f"INSERT INTO {EVENTS.name} ({columns}, applied_at) VALUES ({marks}, NULL) ON CONFLICT DO NOTHING"
    record = ", ".join(f"{c} {t}" for c, t in zip(_INSERT_COLUMNS[:-1], _PG_RECORD_TYPES, strict=True))
    values = ", ".join(f"v.{c}" for c in _INSERT_COLUMNS[:-1])
    return (
        f"INSERT INTO {EVENTS.name} ({columns}) SELECT {values}, %s FROM ROWS FROM "
        f"(json_to_recordset(%s::json) AS ({record})) WITH ORDINALITY AS v({', '.join(_INSERT_COLUMNS[:-1])}, ord) "
        "ORDER BY v.ord ON CONFLICT DO NOTHING"
    )


def _db_time(value: datetime | None, sqlite: bool):
    """What SQLModel's UTCDateTime binds: aware UTC for PostgreSQL, its naive-UTC text for SQLite."""
    if value is None or not sqlite:
        return value
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]  # without the "+00:00"


def _status_values(status: StatusUpdate, channel_id: int | None) -> tuple:
    """One event's values in _INSERT_COLUMNS order, received_at left out (one value for the whole body)."""
    error = status.errors[0] if status.errors else None
    return (
        channel_id,
        status.message_id[:128],
        status.status[:16],
        recipient_id_from_callback(status.biz_opaque_callback_data),
        status.timestamp,
        error.code if error else None,
        (error.title or error.message or "")[:500] if error else "",
        dict(status.raw),
    )


def _sqlite_row(values: tuple, received: object) -> tuple:
    """A row bound as sqlite3 takes it (what SQLModel's types would bind: the SQLAlchemy Core insert spent
    more on binding, with JSON, datetime and string processors per value, than the database on storing)."""
    *head, timestamp, code, title, payload = values
    return (*head, _db_time(timestamp, True), code, title, json.dumps(payload), received)


def _pg_rows_document(rows: list[tuple]) -> str:
    """The rows as one JSON array of objects, as json_to_recordset reads them."""
    names = _INSERT_COLUMNS[:-1]
    ts = names.index("provider_timestamp")
    return json.dumps(
        [
            dict(zip(names, (*v[:ts], v[ts].isoformat() if v[ts] is not None else None, *v[ts + 1 :]), strict=True))
            for v in rows
        ]
    )


def store_events(session: Session, events: WebhookEvents, channel_for: Callable[[str], int | None]) -> StoreResult:
    """Append the statuses and record inbound messages (caller commits; nothing is applied here).

    `channel_for(phone_number_id)` names the channel each item came through: one whose app secret
    signed the body and which owns that number, or None, and then the item is refused (not stored)."""
    dialect = session.get_bind().dialect.name
    sqlite = dialect == "sqlite"
    received = _db_time(utcnow(), sqlite)
    result = StoreResult()
    rows, refused = [], []
    for status in events.statuses:
        channel_id = channel_for(status.phone_number_id)
        if channel_id is None:
            result.refused += 1
            refused.append(status)
            continue
        rows.append(_status_values(status, channel_id))
    result.statuses = len(rows)
    if rows and sqlite:
        session.connection().exec_driver_sql(_insert_sql(dialect), [_sqlite_row(v, received) for v in rows])
    elif rows:  # one JSON array, read in the body's order
        session.connection().exec_driver_sql(_insert_sql(dialect), (received, _pg_rows_document(rows)))
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


def _raw(column, name: str | None = None):
    """A timestamp as the driver returns it (SQLite: its text; PostgreSQL: an aware datetime): the applier
    only tests it for None or writes it back, so parsing six per event into datetimes was wasted work."""
    return type_coerce(column, NullType()).label(name or column.name)


_COLUMNS = (
    EVENTS.c.id,
    EVENTS.c.message_id,
    EVENTS.c.status,
    _raw(EVENTS.c.provider_timestamp),
    EVENTS.c.error_code,
    EVENTS.c.error_title,
    _raw(EVENTS.c.received_at),
    EVENTS.c.channel_id.label("event_channel_id"),
    RECIPIENTS.c.id.label("rid"),
    RECIPIENTS.c.campaign_id,
    RECIPIENTS.c.address,
    RECIPIENTS.c.status.label("rstatus"),
    RECIPIENTS.c.message_id.label("rwamid"),
    _raw(RECIPIENTS.c.sent_at),
    _raw(RECIPIENTS.c.delivered_at),
    _raw(RECIPIENTS.c.read_at),
    _raw(RECIPIENTS.c.failed_at),
)


def _aware(value) -> datetime | None:
    """A raw timestamp (`_raw`) as an aware datetime."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _matching(session: Session, limit: int) -> tuple[list, int | None]:
    """Unapplied events matching a recipient, oldest first, and the id up to which a full batch by wamid
    walked (None when it walked the whole backlog)."""
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

    by_wamid_query = select(*_COLUMNS).join(RECIPIENTS, RECIPIENTS.c.message_id == EVENTS.c.message_id)
    # The oldest WINDOW_FACTOR x limit unapplied events first: bounded so the planner walks them in id order
    # and joins each (PostgreSQL, misjudging how many events match, otherwise hashed every recipient
    # and sorted the whole backlog on each pass: 0.25 s at 110,000 events). When that head holds too few
    # matches (events whose wamid is not known yet), the whole backlog is searched as before.
    bound = session.execute(
        select(EVENTS.c.id)
        .where(EVENTS.c.applied_at.is_(None))
        .order_by(EVENTS.c.id)
        .offset(WINDOW_FACTOR * limit - 1)
        .limit(1)
    ).scalar()
    by_wamid = run(by_wamid_query.where(EVENTS.c.id <= bound)) if bound is not None else []
    if len(by_wamid) < limit:
        by_wamid = run(by_wamid_query)
    by_callback = select(*_COLUMNS, EVENTS.c.payload).join(RECIPIENTS, RECIPIENTS.c.id == EVENTS.c.recipient_id)
    by_callback = by_callback.where(RECIPIENTS.c.message_id.is_(None))
    if len(by_wamid) >= limit:
        # A full batch by wamid: look for callback matches among the events that batch walked past, not in
        # the whole backlog (a scan of every unapplied event per pass made a backlog quadratic to drain).
        # Later events are looked at by later passes, once the batches before them are applied.
        by_callback = by_callback.where(EVENTS.c.id <= by_wamid[-1].id)
    by_callback = run(by_callback)
    seen = {row.id for row in by_wamid}
    window = by_wamid[-1].id if len(by_wamid) >= limit else None
    return list(by_wamid) + [row for row in by_callback if row.id not in seen and _same_campaign(row)], window


def _same_campaign(row) -> bool:
    """A namespaced callback names its campaign: a row of another campaign is not the one it means."""
    payload = row.payload if isinstance(row.payload, dict) else {}
    named = campaign_id_from_callback(payload.get("biz_opaque_callback_data"))
    return named is None or named == row.campaign_id


def _fold(rows: list, now) -> dict | None:
    """The recipient's changed columns after these events, or None when nothing changes. Timestamps stay
    as the driver gave them (`_raw`); `now` is in the same form."""
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
    for event in rows if len(rows) == 1 else sorted(rows, key=lambda e: (_ORDER.get(e.status, 9), e.id)):
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
    changed = {k: v for k, v in new.items() if v != current[k]}
    if not changed and error is None:
        return None
    if error is not None:
        changed["error_code"], changed["error_title"] = error[0], error[1][:500]
    return changed


_UPDATABLE = (
    "status",
    "message_id",
    "sent_at",
    "delivered_at",
    "read_at",
    "failed_at",
    "error_code",
    "error_title",
    "updated_at",
)
_PG_TYPES = {"error_code": "integer", "error_title": "varchar", "status": "varchar", "message_id": "varchar"}


def _write_changes(session: Session, changes: dict[int, dict], now: datetime) -> None:
    """Each recipient's changed columns, grouped by which columns change (a read sets status and read_at,
    nothing else): fewer index entries rewritten on SQLite than setting every column, and on PostgreSQL
    one UPDATE .. FROM unnest(arrays) per group instead of a statement per row."""
    groups: dict[tuple[str, ...], list[tuple]] = defaultdict(list)
    for rid, changed in changes.items():
        changed["updated_at"] = now
        columns = tuple(c for c in _UPDATABLE if c in changed)
        groups[columns].append((rid, *(changed[c] for c in columns)))
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        for columns, rows in groups.items():
            sql = f"UPDATE {RECIPIENTS.name} SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ?"
            connection.exec_driver_sql(
                sql, [(*(_db_time(v, True) if isinstance(v, datetime) else v for v in row[1:]), row[0]) for row in rows]
            )
        return
    for columns, rows in groups.items():
        # One statement per column set, its rows passed as arrays: a constant query text (prepared once)
        # whatever the batch size, instead of a statement per row. The arrays go in binary (%b): psycopg
        # writes the text form of an array element by element in Python with a regex per value, 8x the CPU
        # (15 ms against 1.8 ms for 2,000 rows of four columns), and that CPU is the web process's.
        sets = ", ".join(f"{c} = v.{c}" for c in columns)
        arrays = ", ".join(f"%b::{_PG_TYPES.get(c, 'timestamptz')}[]" for c in columns)
        connection.exec_driver_sql(
            f"UPDATE {RECIPIENTS.name} AS r SET {sets} FROM unnest(%b::integer[], {arrays}) "
            f"AS v(id, {', '.join(columns)}) WHERE r.id = v.id",
            tuple([row[i] for row in rows] for i in range(len(columns) + 1)),
        )


def _mark_applied(session: Session, ids: list[int], now: datetime) -> None:
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        for start in range(0, len(ids), 900):  # SQLite's default limit of 999 parameters
            chunk = ids[start : start + 900]
            connection.exec_driver_sql(
                f"UPDATE {EVENTS.name} SET applied_at = ? WHERE id IN ({', '.join(['?'] * len(chunk))})",
                (_db_time(now, True), *chunk),
            )
        return
    connection.exec_driver_sql(f"UPDATE {EVENTS.name} SET applied_at = %s WHERE id = ANY(%b)", (now, ids))


def refresh_backlog_statistics(session: Session) -> None:
    """PostgreSQL: ANALYZE the events table, so the match query is planned for the backlog it has
    (an index walk in id order, not a sort of every unapplied event). SQLite plans without statistics."""
    if session.get_bind().dialect.name != "postgresql":
        return
    session.execute(text(f"ANALYZE {EVENTS.name}"))
    session.commit()


def apply_pending_statuses(session: Session, limit: int = DEFAULT_BATCH, *, refresh: bool = True) -> ApplyResult:
    """Apply up to `limit` stored events that match a recipient; commit is the caller's.

    With `refresh`, the touched campaigns' counters are recomputed (and a Sending campaign whose rows
    are all settled finishes); the background applier passes False and refreshes at most once a
    second per campaign instead, because that aggregate is the costly part on a large campaign."""
    result = ApplyResult()
    lock_for_writing(session)
    rows, window = _matching(session, max(1, int(limit)))
    # Trial sends (issue 5) are not recipients; looked for in the same window of the backlog.
    result.applied += apply_trial_statuses(session, limit, up_to=window)
    if not rows:
        return result
    now = utcnow()
    by_recipient: dict[int, list] = defaultdict(list)
    for row in rows:
        by_recipient[row.rid].append(row)
    changes: dict[int, dict] = {}
    failures: list[Failure] = []
    now_raw = _db_time(now, session.get_bind().dialect.name == "sqlite")  # as the raw timestamps read
    for rid, recipient_rows in by_recipient.items():
        changed = _fold(recipient_rows, now_raw)
        if changed is not None:
            first = recipient_rows[0]
            if "error_code" in changed:
                failures.append(
                    Failure(first.campaign_id, first.address, changed["error_code"], changed["error_title"])
                )
            changes[rid] = changed
            result.campaigns.add(first.campaign_id)
    _write_changes(session, changes, now)
    result.recipients_changed = len(changes)
    ids = [row.id for row in rows]
    _mark_applied(session, ids, now)
    result.applied = len(ids)
    result.events = [(row.event_channel_id, row.status, _aware(row.received_at)) for row in rows]
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
        client = _redis()
        # Only campaigns with held sends (rarely any): naming every applied row in a ZREM cost more than
        # the rest of the pass's Redis work.
        pipe = client.pipeline(transaction=False)
        for campaign_id in by_campaign:
            pipe.exists(held_key(campaign_id))
        held = [cid for cid, exists in zip(by_campaign, pipe.execute(), strict=True) if exists]
        if held:
            pacing.release(client, {cid: by_campaign[cid] for cid in held})
    except Exception:
        log.warning("webhook: could not release held sends in Redis", exc_info=True)
