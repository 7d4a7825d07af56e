"""Login, server-side sessions and login throttling.

A login issues a fresh random session secret generated here (never the browser's own token);
only its SHA-256 is stored. Sessions end on logout, on deactivation, after an idle period and
after an absolute lifetime. Failed logins slow the guesser down without locking the owner out
(`login_throttle`: per account and address, per address, per account; a known device skips them).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

import redis
from sqlmodel import Session, select

from app.domain.passwords import hash_password, needs_rehash, verify_password
from app.models import User, UserSession
from app.redis_conn import get_redis
from app.services.accounts import audit, login_throttle
from app.settings import get_settings
from app.timeutil import utcnow

LOGIN_FAILED_MESSAGE = "Incorrect email or password, or too many attempts. Please try again later."
# Touching last_seen_at on every event would turn each click into a write; once a minute is enough
# for an idle timeout measured in hours.
_TOUCH_INTERVAL = timedelta(minutes=1)


class LoginFailed(Exception):
    def __init__(self) -> None:
        super().__init__(LOGIN_FAILED_MESSAGE)


@dataclass(frozen=True)
class LoginResult:
    user: User
    session_secret: str  # goes to the browser cookie once; never stored
    device_token: str = ""  # the browser's device cookie: the one it sent if still good, else a new one


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def normalise_email(email: str) -> str:
    return (email or "").strip().lower()


def login(
    *,
    session: Session,
    redis_client: redis.Redis,
    email: str,
    password: str,
    ip: str = "",
    user_agent: str = "",
    device_token: str = "",
) -> LoginResult:
    """Check the credentials and open a session; LoginFailed (one generic message) otherwise.

    Blocking (Argon2id takes tens of milliseconds of CPU): the login form calls it off the event loop."""
    email = normalise_email(email)
    if not email or not password or len(email) > 254 or len(password) > 256:
        raise LoginFailed()
    user = session.exec(select(User).where(User.email == email)).first()
    trusted = login_throttle.device_is_trusted(redis_client, device_token, user.id if user else None)
    # Waits first (refusing costs nothing), then the rate limits that keep password checks affordable.
    waiting = login_throttle.waiting_scope(redis_client, email, ip, trusted=trusted) or login_throttle.admit(
        redis_client, ip, trusted=trusted
    )
    if waiting is not None:
        if login_throttle.first_refusal_this_minute(redis_client, email, ip, waiting):
            audit.record(
                session=session,
                actor=None,
                actor_email=email,
                action="auth.login",
                outcome="refused",
                detail={"reason": "throttled", "scope": waiting},
                ip=ip,
            )
            session.commit()
        raise LoginFailed()
    ok = verify_password(user.password_hash if user else None, password)
    if not ok or user is None or not user.is_active:
        login_throttle.note_failure(redis_client, email, ip, device_token if trusted else "")
        audit.record(
            session=session,
            actor=user,
            actor_email=email,
            action="auth.login",
            outcome="refused",
            detail={"reason": "inactive" if (ok and user) else "bad_credentials"},
            ip=ip,
        )
        session.commit()
        raise LoginFailed()
    login_throttle.note_success(redis_client, email, ip, device_token if trusted else "")
    if not trusted:
        device_token = login_throttle.issue_device_token(user.id)
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    secret = secrets.token_urlsafe(32)
    now = utcnow()
    settings = get_settings()
    session.add(
        UserSession(
            token_hash=token_hash(secret),
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(hours=settings.session_absolute_hours),
            ip=ip[:64],
            user_agent=user_agent[:255],
        )
    )
    user.last_login_at = now
    session.add(user)
    audit.record(session=session, actor=user, action="auth.login", ip=ip)
    session.commit()
    return LoginResult(user=user, session_secret=secret, device_token=device_token)


def resolve_session(*, session: Session, secret: str) -> User | None:
    """The active user behind a browser's session secret, or None. Re-reads the user every time."""
    if not secret or len(secret) > 200:
        return None
    row = session.exec(select(UserSession).where(UserSession.token_hash == token_hash(secret))).first()
    if row is None or row.revoked_at is not None:
        return None
    now = utcnow()
    settings = get_settings()
    if now >= row.expires_at or now - row.last_seen_at >= timedelta(minutes=settings.session_idle_minutes):
        row.revoked_at = now
        session.add(row)
        session.commit()
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.is_active:
        return None
    if now - row.last_seen_at >= _TOUCH_INTERVAL:
        row.last_seen_at = now
        session.add(row)
        session.commit()
    return user


def record_refused_call(
    *,
    session: Session,
    user: User | None,
    secret: str,
    handler: str,
    capability: str,
    ip: str,
    redis_client: redis.Redis | None = None,
) -> None:
    """Audit a refused handler call (caller commits). A stranger's (no session cookie, or one that never
    was a session) is only counted per minute: `audit.record_stranger_refusal` (a row each without Redis)."""
    stranger = user is None and (
        not secret
        or len(secret) > 200
        or session.exec(select(UserSession.id).where(UserSession.token_hash == token_hash(secret))).first() is None
    )
    if stranger and redis_client is None:
        try:
            redis_client = get_redis()
        except Exception:  # no Redis configured: fall back to a row per refusal below
            redis_client = None
    if stranger and redis_client is not None:
        audit.record_stranger_refusal(
            session=session, redis_client=redis_client, handler=handler, capability=capability, ip=ip
        )
        return
    audit.record(
        session=session,
        actor=user,
        action="permission.refused",
        outcome="refused",
        target_type="handler",
        target_id=handler,
        detail={"capability": capability},
        ip=ip,
    )


def logout(*, session: Session, secret: str) -> None:
    row = None
    if secret:
        row = session.exec(select(UserSession).where(UserSession.token_hash == token_hash(secret))).first()
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()
        session.add(row)
        user = session.get(User, row.user_id)
        audit.record(session=session, actor=user, action="auth.logout")
        session.commit()


def revoke_all_sessions(*, session: Session, user_id: int) -> int:
    rows = session.exec(
        select(UserSession).where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
    ).all()
    now = utcnow()
    for row in rows:
        row.revoked_at = now
        session.add(row)
    return len(rows)
