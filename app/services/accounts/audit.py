"""The audit trail: who did what, including what they were refused."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlmodel import Session, select

from app.domain import permissions as perm
from app.models import AuditLog, User
from app.services import access
from app.services.paging import Page, fmt_time, paging


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


# --- reading the trail (the admins' Audit log page) -------------------------------------------------

AUDIT_PAGE_SIZE = 50


def audit_page(*, session: Session, actor: User | None, page: int = 1,
               page_size: int = AUDIT_PAGE_SIZE) -> Page:
    """The audit log, newest first, one page at a time (it only grows: never read whole). Admins only."""
    access.require(session, actor, perm.AUDIT_VIEW)
    page, page_size = paging(page, page_size)
    total = session.exec(select(func.count()).select_from(AuditLog)).one()
    pages = max(1, -(-total // page_size))
    page = min(page, pages)
    entries = session.exec(select(AuditLog).order_by(AuditLog.id.desc())
                           .offset((page - 1) * page_size).limit(page_size)).all()
    rows = [{"id": str(e.id), "at": fmt_time(e.at), "actor": e.actor_email or "—", "action": e.action,
             "outcome": e.outcome, "target": f"{e.target_type} {e.target_id}".strip(), "ip": e.ip,
             "detail": ", ".join(f"{k}: {v}" for k, v in sorted((e.detail or {}).items()))[:300]}
            for e in entries]
    return Page(rows=rows, total=total, page=page, page_size=page_size)
