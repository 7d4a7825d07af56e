"""The database side of a campaign's queue of recipient rows: claiming, and what is left to do.

The database is the source of truth (DESIGN rule 2). `claim_rows` marks up to `limit` due `queued`
rows `sending` (claimed_at, attempts + 1) in one short write transaction (PostgreSQL:
`FOR UPDATE SKIP LOCKED`; SQLite: `BEGIN IMMEDIATE`) and COMMITS before any HTTP call. Two jobs can
never claim the same row, and a crash after the commit leaves rows `sending`, which are never resent
(the sweeper reconciles them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import exists, func, select, update
from sqlalchemy.engine import Connection, Engine

from app.domain.campaign_status import R_QUEUED, R_SENDING, SENDING
from app.models import Campaign, CampaignRecipient
from app.timeutil import utcnow

R = CampaignRecipient.__table__
C = Campaign.__table__


def is_sqlite(engine_or_conn: Engine | Connection) -> bool:
    return engine_or_conn.dialect.name == "sqlite"


def begin_write(conn: Connection) -> None:
    """Start a write transaction on a fresh connection. SQLite: BEGIN IMMEDIATE takes the write lock
    first, so a read-then-write transaction can never fail with a stale snapshot (SQLITE_BUSY)."""
    if is_sqlite(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


@dataclass(frozen=True)
class Claimed:
    id: int
    address: str
    contact_id: int | None
    variables: dict
    attempts: int


def claim_rows(engine: Engine, campaign_id: int, limit: int, now: datetime) -> list[Claimed]:
    """Atomically mark up to `limit` due queued rows `sending` and return them (committed)."""
    due = (
        select(R.c.id)
        .where(
            R.c.campaign_id == campaign_id,
            R.c.status == R_QUEUED,
            (R.c.next_attempt_at.is_(None)) | (R.c.next_attempt_at <= now),
        )
        .order_by(R.c.id)
        .limit(limit)
    )
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


def campaign_status(engine: Engine, campaign_id: int) -> str | None:
    with engine.connect() as conn:
        return conn.execute(select(C.c.status).where(C.c.id == campaign_id)).scalar()


def next_due(engine: Engine, campaign_id: int) -> datetime | None | bool:
    """When the campaign's next queued row is due: a datetime, True (now), or None (nothing queued)."""
    with engine.connect() as conn:
        row = conn.execute(
            select(func.count(), func.min(R.c.next_attempt_at)).where(
                R.c.campaign_id == campaign_id, R.c.status == R_QUEUED
            )
        ).one()
        if not row[0]:
            return None
        has_now = conn.execute(
            select(R.c.id)
            .where(
                R.c.campaign_id == campaign_id,
                R.c.status == R_QUEUED,
                (R.c.next_attempt_at.is_(None)) | (R.c.next_attempt_at <= utcnow()),
            )
            .limit(1)
        ).first()
    if has_now:
        return True
    earliest = row[1]
    if earliest is not None and earliest.tzinfo is None:
        earliest = earliest.replace(tzinfo=UTC)
    return earliest
