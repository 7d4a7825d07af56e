"""Changing passwords (issue 13 item 8): a user changes their own, an admin resets someone's, the
operator sets one from the CLI (`hubcast user set-password`).

Every change ends the account's other sessions (ASVS 3.3.3): whoever else held one, a thief included,
is signed out at their next click. A change of one's own password needs the current one, checked with
the login's throttle (`login_throttle`, per account and address): a stolen session cannot guess it
quickly either. New passwords pass `app.domain.passwords.check_password_rules` (length, breached and
easily guessed passwords refused). Argon2 runs in the caller's thread: State handlers call these off
the event loop.
"""

from __future__ import annotations

from sqlmodel import Session, select

from app.domain import permissions as perm
from app.domain.passwords import check_password_rules, generate_password, hash_password, verify_password
from app.models import User, UserSession
from app.redis_conn import get_redis
from app.services.access import get_or_raise, require
from app.services.accounts import audit, login_throttle
from app.services.accounts.auth import normalise_email, token_hash
from app.timeutil import utcnow

WRONG_CURRENT = "Your current password is not correct."
TOO_MANY = "Too many wrong attempts at your current password; try again in a few minutes."


class PasswordError(ValueError):
    """A password change refused; the message is shown as is and nothing changed."""


def _end_sessions(session: Session, user_id: int, *, keep_secret: str = "") -> int:
    """Revoke the user's sessions except the one `keep_secret` names. Returns how many ended."""
    keep = token_hash(keep_secret) if keep_secret else None
    rows = session.exec(select(UserSession).where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None)))
    now, ended = utcnow(), 0
    for row in rows.all():
        if row.token_hash != keep:
            row.revoked_at = now
            session.add(row)
            ended += 1
    return ended


def _set(session: Session, user: User, password: str) -> None:
    try:
        check_password_rules(password, email=user.email)
    except ValueError as exc:
        raise PasswordError(str(exc)) from exc
    user.password_hash, user.updated_at = hash_password(password), utcnow()
    session.add(user)


def change_own_password(
    *,
    session: Session,
    actor: User,
    current_password: str,
    new_password: str,
    confirm_password: str,
    session_secret: str,
    ip: str = "",
) -> int:
    """The signed-in user changes their password; their other sessions end (the one `session_secret`
    names stays). Returns how many sessions ended. PasswordError, changing nothing, otherwise."""
    user = require(session, actor, perm.ACCOUNT_OWN)
    redis_client = get_redis()
    if login_throttle.waiting_scope(redis_client, user.email, ip, trusted=False) is not None:
        raise PasswordError(TOO_MANY)
    if not current_password or len(current_password) > 256 or not verify_password(user.password_hash, current_password):
        login_throttle.note_failure(redis_client, user.email, ip)
        audit.record(
            session=session,
            actor=user,
            action="user.password_change",
            outcome="refused",
            target_type="user",
            target_id=user.id,
            detail={"reason": "wrong_current_password"},
            ip=ip,
        )
        session.commit()
        raise PasswordError(WRONG_CURRENT)
    if new_password != confirm_password:
        raise PasswordError("The new password and its confirmation differ.")
    if new_password == current_password:
        raise PasswordError("The new password must differ from the current one.")
    _set(session, user, new_password)
    ended = _end_sessions(session, user.id, keep_secret=session_secret)
    audit.record(
        session=session,
        actor=user,
        action="user.password_change",
        target_type="user",
        target_id=user.id,
        detail={"sessions_ended": ended},
        ip=ip,
    )
    session.commit()
    return ended


def reset_password(*, session: Session, actor: User, user_id) -> tuple[User, str]:
    """An admin gives a user a new generated password (shown once to the admin) and ends all of that
    user's sessions. Caller commits."""
    actor = require(session, actor, perm.USERS_MANAGE)
    user = get_or_raise(session, User, user_id, PasswordError, "That user no longer exists.")
    if user.id == actor.id:
        raise PasswordError("Use “Change password” in your account menu for your own password.")
    generated = generate_password()
    _set(session, user, generated)
    ended = _end_sessions(session, user.id)
    audit.record(
        session=session,
        actor=actor,
        action="user.password_reset",
        target_type="user",
        target_id=user.id,
        detail={"sessions_ended": ended},
    )
    return user, generated


def set_password_cli(*, session: Session, email: str, password: str | None) -> tuple[User, str | None, int]:
    """`hubcast user set-password EMAIL`: the operator (shell access to the server) sets a password, or has
    one generated. Returns (user, generated password or None, sessions ended). Caller commits."""
    email = normalise_email(email)
    user = session.exec(select(User).where(User.email == email)).first()
    if user is None:
        raise PasswordError(f"No user has the email {email or '(empty)'}.")
    generated = None
    if password is None:
        password = generated = generate_password()
    _set(session, user, password)
    ended = _end_sessions(session, user.id)
    audit.record(
        session=session,
        actor=None,
        actor_email="cli",
        action="user.password_reset",
        target_type="user",
        target_id=user.id,
        detail={"sessions_ended": ended, "by": "cli"},
    )
    return user, generated, ended
