"""The audit trail: who did what, including what they were refused."""

from __future__ import annotations

from typing import Any

import redis
from sqlalchemy import func
from sqlmodel import Session, select

from app.domain import permissions as perm
from app.models import AuditLog, User
from app.services import access
from app.services.paging import Page, fmt_time, paging
from app.timeutil import utcnow


def record(
    *,
    session: Session,
    actor: User | None,
    action: str,
    outcome: str = "ok",
    target_type: str = "",
    target_id: Any = "",
    detail: dict | None = None,
    ip: str = "",
    actor_email: str = "",
) -> AuditLog:
    entry = AuditLog(
        actor_id=actor.id if actor else None,
        actor_email=(actor.email if actor else actor_email)[:254],
        action=action,
        outcome=outcome,
        target_type=target_type,
        target_id=str(target_id)[:64] if target_id not in (None, "") else "",
        detail=detail or {},
        ip=ip[:64],
    )
    session.add(entry)
    return entry


# --- refusals from strangers, counted per minute (issue 13 item 2b) --------------------------------

STRANGER_REFUSALS_KEY = "hubcast:audit:stranger-refusals:"
_UPDATE_EVERY = 64  # the row's count is rewritten at 1, 2, 4 ... 64, then every 64th refusal


def _due(count: int) -> bool:
    return count % _UPDATE_EVERY == 0 or (count < _UPDATE_EVERY and count & (count - 1) == 0)


def record_stranger_refusal(
    *, session: Session, redis_client: redis.Redis, handler: str, capability: str, ip: str
) -> AuditLog | None:
    """A guarded handler called by a stranger (no session cookie, or one that never was a session).

    Anyone can send such events by the thousand, and one row and one commit each let them fill the
    database and the writer lock. So they are counted in Redis per minute, and the minute has one row:
    written at its first refusal (with that call's handler and address), its `detail.count` rewritten
    as it grows (at powers of two, then every 64th, so at most ~1/64 of the calls write). Signed-in
    callers and ended sessions still get one row per refusal (`record`). Without Redis: a row each."""
    minute = utcnow().strftime("%Y-%m-%dT%H:%MZ")
    key = STRANGER_REFUSALS_KEY + minute
    try:
        pipe = redis_client.pipeline()
        pipe.hincrby(key, "count", 1)
        pipe.expire(key, 600)
        count = int(pipe.execute()[0])
        row_id = None if count == 1 else redis_client.hget(key, "row")
    except redis.RedisError:
        return record(
            session=session,
            actor=None,
            action="permission.refused",
            outcome="refused",
            target_type="handler",
            target_id=handler,
            detail={"capability": capability},
            ip=ip,
        )
    if count == 1:
        entry = record(
            session=session,
            actor=None,
            action="permission.refused",
            outcome="refused",
            target_type="handler",
            target_id=handler,
            ip=ip,
            detail={"capability": capability, "anonymous": True, "minute": minute, "count": 1},
        )
        session.flush()
        redis_client.hset(key, "row", entry.id)
        return entry
    if row_id is not None and _due(count):
        entry = session.get(AuditLog, int(row_id))
        if entry is not None:
            entry.detail = {**(entry.detail or {}), "count": count}
            session.add(entry)
    return None


# --- reading the trail (the admins' Audit log page) -------------------------------------------------

AUDIT_PAGE_SIZE = 50


def audit_page(*, session: Session, actor: User | None, page: int = 1, page_size: int = AUDIT_PAGE_SIZE) -> Page:
    """The audit log, newest first, one page at a time (it only grows: never read whole). Admins only."""
    access.require(session, actor, perm.AUDIT_VIEW)
    page, page_size = paging(page, page_size)
    total = session.exec(select(func.count()).select_from(AuditLog)).one()
    pages = max(1, -(-total // page_size))
    page = min(page, pages)
    entries = session.exec(
        select(AuditLog).order_by(AuditLog.id.desc()).offset((page - 1) * page_size).limit(page_size)
    ).all()
    rows = [
        {
            "id": str(e.id),
            "at": fmt_time(e.at),
            "actor": e.actor_email or "—",
            "action": e.action,
            "outcome": e.outcome,
            "target": f"{e.target_type} {e.target_id}".strip(),
            "ip": e.ip,
            "detail": ", ".join(f"{k}: {v}" for k, v in sorted((e.detail or {}).items()))[:300],
        }
        for e in entries
    ]
    return Page(rows=rows, total=total, page=page, page_size=page_size)
