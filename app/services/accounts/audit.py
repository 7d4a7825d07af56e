"""The audit trail: who did what, including what they were refused."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from app.models import AuditLog, User


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
