"""User administration: create, change role, (de)activate. Admin-only (users:manage)."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, select

from app.domain import permissions as perm
from app.domain.email_address import is_email
from app.domain.passwords import check_password_rules, generate_password, hash_password
from app.models import User
from app.services.access import get_or_raise, require
from app.services.accounts import audit
from app.services.accounts.auth import normalise_email, revoke_all_sessions
from app.timeutil import utcnow


class UserError(ValueError):
    """Bad input for a user operation; the message is shown as is."""


def _target_user(session: Session, user_id) -> User:
    return get_or_raise(session, User, user_id, UserError, "That user no longer exists.")


def create_user(
    *, session: Session, actor: User | None, email: str, role: str, name: str = "", password: str | None = None
) -> tuple[User, str | None]:
    """Returns the user and, when no password was given, the generated one (shown once)."""
    if actor is not None:  # None = the operator's CLI, which runs with shell access to the server
        actor = require(session, actor, perm.USERS_MANAGE)
    email = normalise_email(email)
    if not is_email(email):  # length first, then one linear scan (issue 13 item 10)
        raise UserError(f"{email or 'An empty value'} is not a valid email address.")
    try:
        role = perm.validate_role(role)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    generated = None
    if password is None:
        password = generated = generate_password()
    try:
        check_password_rules(password, email=email)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    if session.exec(select(User).where(User.email == email)).first() is not None:
        raise UserError(f"A user with email {email} already exists.")
    user = User(email=email, name=name.strip()[:120], role=role, password_hash=hash_password(password))
    session.add(user)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        actor_email="cli" if actor is None else "",
        action="user.create",
        target_type="user",
        target_id=user.id,
        detail={"email": email, "role": role},
    )
    return user, generated


def list_users(*, session: Session, actor: User) -> list[User]:
    actor = require(session, actor, perm.USERS_MANAGE)
    return list(session.exec(select(User).order_by(User.email)).all())


def _active_admins(session: Session) -> int:
    return session.exec(select(func.count()).select_from(User).where(User.role == perm.ADMIN, User.is_active)).one()


def change_role(*, session: Session, actor: User, user_id: int, role: str) -> User:
    actor = require(session, actor, perm.USERS_MANAGE)
    try:
        role = perm.validate_role(role)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    user = _target_user(session, user_id)
    if user.role == perm.ADMIN and role != perm.ADMIN and user.is_active and _active_admins(session) <= 1:
        raise UserError("Hubcast needs at least one active admin; promote someone else first.")
    old = user.role
    user.role, user.updated_at = role, utcnow()
    session.add(user)
    audit.record(
        session=session,
        actor=actor,
        action="user.role",
        target_type="user",
        target_id=user.id,
        detail={"from": old, "to": role},
    )
    return user


def set_active(*, session: Session, actor: User, user_id: int, active: bool) -> User:
    actor = require(session, actor, perm.USERS_MANAGE)
    user = _target_user(session, user_id)
    if not active and user.id == actor.id:
        raise UserError("You cannot deactivate your own account.")
    if not active and user.role == perm.ADMIN and user.is_active and _active_admins(session) <= 1:
        raise UserError("Hubcast needs at least one active admin.")
    user.is_active, user.updated_at = active, utcnow()
    session.add(user)
    ended = 0 if active else revoke_all_sessions(session=session, user_id=user.id)
    audit.record(
        session=session,
        actor=actor,
        action="user.activate" if active else "user.deactivate",
        target_type="user",
        target_id=user.id,
        detail={"sessions_ended": ended},
    )
    return user


def ensure_first_admin(*, session: Session, email: str | None, password: str | None) -> tuple[User, str | None] | None:
    """Create the first admin when there is no user at all. Returns (user, generated password) or None."""
    if session.exec(select(func.count()).select_from(User)).one() > 0:
        return None
    return create_user(
        session=session,
        actor=None,
        email=email or "admin@hubcast.local",
        role=perm.ADMIN,
        name="Admin",
        password=password,
    )
