"""Who may do what, checked once per service call, the same way everywhere.

`require` re-reads the actor from the database instead of trusting the object the caller passed in: a
user deactivated or demoted a second ago is refused at once, and a crafted object with `role="admin"`
gains nothing. `get_or_raise` turns an id from the browser (any type, possibly garbage) into a row or
the service's own user-facing error, so "that X does not exist" reads the same on every page.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlmodel import Session, SQLModel

from app.domain import permissions as perm
from app.models import User

Row = TypeVar("Row", bound=SQLModel)


def require(session: Session, actor: User | None, capability: str) -> User:
    """The actor as stored now, if signed in, active and holding `capability`; else PermissionDenied."""
    actor_id = getattr(actor, "id", None)
    if actor is None or actor_id is None:
        raise perm.NotAuthenticated()
    user = session.get(User, actor_id)
    if user is None or not user.is_active:
        raise perm.NotAuthenticated()
    perm.require(user.role, capability)
    return user


def parse_id(value: Any) -> int | None:
    """An id typed or crafted in the browser: a positive int, or None when it cannot be one."""
    if isinstance(value, bool):
        return None
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def get_or_raise(session: Session, model: type[Row], row_id: Any, error: type[Exception], message: str) -> Row:
    """The row of `model` with that id, or `error(message)` when the id is malformed or unknown."""
    number = parse_id(row_id)
    row = session.get(model, number) if number is not None else None
    if row is None:
        raise error(message)
    return row
