"""Login, server-side sessions, throttling and user administration against a real database and Redis."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import types
from datetime import timedelta

import pytest
from sqlmodel import Session, SQLModel, select

from app.domain import permissions as perm
from app.domain.permissions import PermissionDenied
from app.models import AuditLog, User, UserSession
from app.services.accounts import auth, login_throttle, sign_in
from app.services.accounts import users as users_service
from app.services.accounts.auth import LOGIN_FAILED_MESSAGE, LoginFailed
from app.settings import get_settings
from app.timeutil import utcnow

PASSWORD = "correct horse battery"


def _login(session, redis_client, email, password=PASSWORD, ip="", user_agent=""):
    return auth.login(
        session=session, redis_client=redis_client, email=email, password=password, ip=ip, user_agent=user_agent
    )


def _fresh(session: Session):
    """Forget cached ORM objects so the next read comes from the database."""
    session.expire_all()
    return session


def _audit(session, action=None):
    query = select(AuditLog).order_by(AuditLog.id)
    if action:
        query = query.where(AuditLog.action == action)
    return list(_fresh(session).exec(query).all())


def _all_cells(session) -> list[str]:
    cells = []
    for table in SQLModel.metadata.sorted_tables:
        for row in session.connection().execute(table.select()).all():
            cells.extend(str(v) for v in row)
    return cells


def _db_fingerprint(session) -> dict[str, tuple[int, str]]:
    """Row count and checksum of every table (all rows, all columns)."""
    out = {}
    for table in SQLModel.metadata.sorted_tables:
        rows = session.connection().execute(table.select().order_by(*table.primary_key.columns)).all()
        out[table.name] = (len(rows), hashlib.sha256(repr([tuple(map(repr, r)) for r in rows]).encode()).hexdigest())
    return out


# --- login and sessions ------------------------------------------------------------------------


def test_login_issues_a_new_random_secret_each_time(session, redis_client, make_user):
    user = make_user("basic")
    sent = {user.email, PASSWORD, "1.2.3.4", "Mozilla/5.0 test"}
    first = _login(session, redis_client, user.email, ip="1.2.3.4", user_agent="Mozilla/5.0 test")
    second = _login(session, redis_client, user.email, ip="1.2.3.4", user_agent="Mozilla/5.0 test")
    assert first.user.id == second.user.id == user.id
    assert first.session_secret != second.session_secret
    for secret in (first.session_secret, second.session_secret):
        assert len(secret) >= 40  # 32 random bytes, url-safe base64
        assert secret not in sent
        assert not any(secret in value or value in secret for value in sent)
    rows = _fresh(session).exec(select(UserSession).where(UserSession.user_id == user.id)).all()
    assert len(rows) == 2
    assert {r.ip for r in rows} == {"1.2.3.4"}
    assert all(r.expires_at - r.created_at == timedelta(hours=get_settings().session_absolute_hours) for r in rows)


def test_only_the_sha256_of_the_secret_is_stored(session, redis_client, make_user):
    user = make_user("admin")
    result = _login(session, redis_client, user.email)
    secret = result.session_secret
    row = _fresh(session).exec(select(UserSession).where(UserSession.user_id == user.id)).one()
    assert row.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    # No column of any row of any table holds the secret itself.
    assert not any(secret in cell for cell in _all_cells(session))


def test_login_with_differently_written_email(session, redis_client, make_user):
    user = make_user("basic", email="mixed@example.com")
    result = _login(session, redis_client, "  Mixed@Example.COM ")
    assert result.user.id == user.id


def test_resolve_session_and_logout(session, redis_client, make_user):
    user = make_user("advanced")
    secret = _login(session, redis_client, user.email).session_secret
    resolved = auth.resolve_session(session=session, secret=secret)
    assert resolved is not None and resolved.id == user.id and resolved.role == perm.ADVANCED
    assert auth.resolve_session(session=session, secret=secret + "x") is None
    assert auth.resolve_session(session=session, secret="") is None
    assert auth.resolve_session(session=session, secret=hashlib.sha256(secret.encode()).hexdigest()) is None

    auth.logout(session=session, secret=secret)
    assert auth.resolve_session(session=session, secret=secret) is None
    row = _fresh(session).exec(select(UserSession).where(UserSession.user_id == user.id)).one()
    assert row.revoked_at is not None
    assert [a.actor_id for a in _audit(session, "auth.logout")] == [user.id]
    # Logging out again, or with a made-up secret, is harmless.
    auth.logout(session=session, secret=secret)
    auth.logout(session=session, secret="made-up")
    assert len(_audit(session, "auth.logout")) == 1


def test_resolve_session_rereads_the_role_every_time(session, redis_client, make_user):
    admin = make_user("admin")
    user = make_user("basic")
    secret = _login(session, redis_client, user.email).session_secret
    users_service.change_role(session=session, actor=admin, user_id=user.id, role=perm.ADVANCED)
    session.commit()
    assert auth.resolve_session(session=session, secret=secret).role == perm.ADVANCED


def test_one_logout_leaves_other_sessions_alone(session, redis_client, make_user):
    user = make_user("basic")
    a = _login(session, redis_client, user.email).session_secret
    b = _login(session, redis_client, user.email).session_secret
    auth.logout(session=session, secret=a)
    assert auth.resolve_session(session=session, secret=a) is None
    assert auth.resolve_session(session=session, secret=b).id == user.id


def test_deactivation_ends_every_session_at_once(session, redis_client, make_user):
    admin = make_user("admin")
    user = make_user("basic")
    other = make_user("basic")
    secrets_ = [_login(session, redis_client, user.email).session_secret for _ in range(3)]
    other_secret = _login(session, redis_client, other.email).session_secret
    assert all(auth.resolve_session(session=session, secret=s) for s in secrets_)

    users_service.set_active(session=session, actor=admin, user_id=user.id, active=False)
    session.commit()

    assert all(auth.resolve_session(session=session, secret=s) is None for s in secrets_)
    rows = _fresh(session).exec(select(UserSession).where(UserSession.user_id == user.id)).all()
    assert len(rows) == 3 and all(r.revoked_at is not None for r in rows)
    assert auth.resolve_session(session=session, secret=other_secret).id == other.id
    entry = _audit(session, "user.deactivate")[-1]
    assert entry.actor_id == admin.id and entry.target_id == str(user.id) and entry.detail == {"sessions_ended": 3}

    # A deactivated user cannot sign in again, with the generic message.
    with pytest.raises(LoginFailed) as exc:
        _login(session, redis_client, user.email)
    assert str(exc.value) == LOGIN_FAILED_MESSAGE

    # Reactivation does not bring the old sessions back.
    users_service.set_active(session=session, actor=admin, user_id=user.id, active=True)
    session.commit()
    assert all(auth.resolve_session(session=session, secret=s) is None for s in secrets_)
    assert _login(session, redis_client, user.email).user.id == user.id


def _session_row(session, user_id) -> UserSession:
    return _fresh(session).exec(select(UserSession).where(UserSession.user_id == user_id)).one()


def test_idle_session_expires(session, redis_client, make_user):
    user = make_user("basic")
    secret = _login(session, redis_client, user.email).session_secret
    row = _session_row(session, user.id)
    row.last_seen_at = utcnow() - timedelta(minutes=get_settings().session_idle_minutes, seconds=1)
    session.add(row)
    session.commit()
    assert auth.resolve_session(session=session, secret=secret) is None
    assert _session_row(session, user.id).revoked_at is not None
    # Even if the clock problem were "fixed", a revoked session stays dead.
    row = _session_row(session, user.id)
    row.last_seen_at = utcnow()
    session.add(row)
    session.commit()
    assert auth.resolve_session(session=session, secret=secret) is None


def test_activity_keeps_a_session_alive(session, redis_client, make_user):
    user = make_user("basic")
    secret = _login(session, redis_client, user.email).session_secret
    row = _session_row(session, user.id)
    old = utcnow() - timedelta(minutes=get_settings().session_idle_minutes - 5)
    row.last_seen_at = old
    session.add(row)
    session.commit()
    assert auth.resolve_session(session=session, secret=secret).id == user.id
    assert _session_row(session, user.id).last_seen_at > old + timedelta(minutes=1)


def test_absolute_expiry_refuses_even_an_active_session(session, redis_client, make_user):
    user = make_user("basic")
    secret = _login(session, redis_client, user.email).session_secret
    row = _session_row(session, user.id)
    row.expires_at = utcnow() - timedelta(seconds=1)
    row.last_seen_at = utcnow()
    session.add(row)
    session.commit()
    assert auth.resolve_session(session=session, secret=secret) is None
    assert _session_row(session, user.id).revoked_at is not None


# --- throttling --------------------------------------------------------------------------------


def _fail(session, redis_client, email, password="wrong password!!", ip="", device=""):
    with pytest.raises(LoginFailed) as exc:
        auth.login(
            session=session, redis_client=redis_client, email=email, password=password, ip=ip, device_token=device
        )
    assert str(exc.value) == LOGIN_FAILED_MESSAGE


def _reasons(session) -> list[str]:
    return [a.detail["reason"] for a in _audit(session, "auth.login") if a.outcome == "refused"]


def _lift_waits(redis_client) -> None:
    """What the passing of time does to every wait (their keys expire)."""
    for key in redis_client.keys("hubcast:login:wait:*"):
        redis_client.delete(key)


def test_failures_slow_that_address_only_and_never_lock_the_account(session, redis_client, make_user):
    victim = make_user("admin")
    for _ in range(login_throttle.PAIR_FREE + 1):
        _fail(session, redis_client, victim.email, ip="1.2.3.4")
    # The attacker's address now waits, even with the right password, with the same generic message.
    _fail(session, redis_client, victim.email, password=PASSWORD, ip="1.2.3.4")
    _fail(session, redis_client, "  " + victim.email.upper(), password=PASSWORD, ip="1.2.3.4")  # same account
    assert _reasons(session) == ["bad_credentials"] * (login_throttle.PAIR_FREE + 1) + ["throttled"]
    # The owner, anywhere else, signs in at once.
    assert _login(session, redis_client, victim.email, ip="5.6.7.8").user.id == victim.id
    refused = [a for a in _audit(session, "auth.login") if a.outcome == "refused"]
    assert all(a.actor_email == victim.email for a in refused) and refused[0].actor_id == victim.id
    assert [a.ip for a in refused] == ["1.2.3.4"] * len(refused)


def test_waits_grow_with_each_failure_and_are_capped():
    pair = [login_throttle.delay_after(login_throttle.PAIR, n) for n in range(1, 20)]
    assert pair[: login_throttle.PAIR_FREE] == [0.0] * login_throttle.PAIR_FREE
    grown = pair[login_throttle.PAIR_FREE :]
    assert grown[:4] == [1.0, 2.0, 4.0, 8.0] and grown == sorted(grown) and max(grown) == login_throttle.MAX_DELAY_S
    assert login_throttle.delay_after(login_throttle.IP, login_throttle.IP_FREE) == 0.0
    assert login_throttle.delay_after(login_throttle.IP, login_throttle.IP_FREE + 1) == 1.0
    assert login_throttle.delay_after(login_throttle.ACCOUNT, login_throttle.ACCOUNT_FREE) == 0.0
    assert login_throttle.delay_after(login_throttle.ACCOUNT, login_throttle.ACCOUNT_FREE + 1) > 0
    assert login_throttle.delay_after(login_throttle.PAIR, 10_000) == login_throttle.MAX_DELAY_S


def test_a_wait_is_a_redis_key_that_expires_and_reveals_no_email(session, redis_client, make_user):
    user = make_user("basic")
    for _ in range(login_throttle.PAIR_FREE + 1):
        _fail(session, redis_client, user.email, ip="1.2.3.4")
    [key] = redis_client.keys("hubcast:login:wait:*")
    assert 0 < redis_client.pttl(key) <= login_throttle.BASE_DELAY_S * 1000
    assert all(user.email.encode() not in k and b"1.2.3.4" not in k for k in redis_client.keys("hubcast:login:*"))
    _lift_waits(redis_client)
    assert _login(session, redis_client, user.email, ip="1.2.3.4").user.id == user.id


def test_one_address_spraying_many_accounts_is_slowed(session, redis_client, make_user, monkeypatch):
    monkeypatch.setattr(login_throttle, "IP_FREE", 4)  # the rule, with fewer (slow) password checks
    owner = make_user("basic")
    for i in range(login_throttle.IP_FREE + 1):  # one guess per account: no pair ever waits
        _fail(session, redis_client, f"user{i}@example.com", ip="6.6.6.6")
    _fail(session, redis_client, owner.email, password=PASSWORD, ip="6.6.6.6")
    assert _reasons(session)[-1] == "throttled"
    assert _login(session, redis_client, owner.email, ip="7.7.7.7").user.id == owner.id


def test_a_known_device_signs_in_while_its_address_and_account_wait(session, redis_client, make_user):
    owner = make_user("admin")
    device = _login(session, redis_client, owner.email, ip="1.2.3.4").device_token
    assert login_throttle.device_user_id(device) == owner.id
    for _ in range(login_throttle.PAIR_FREE + 2):
        _fail(session, redis_client, owner.email, ip="1.2.3.4")
    _fail(session, redis_client, owner.email, password=PASSWORD, ip="1.2.3.4")  # a new browser there waits
    again = auth.login(
        session=session,
        redis_client=redis_client,
        email=owner.email,
        password=PASSWORD,
        ip="1.2.3.4",
        device_token=device,
    )
    assert again.user.id == owner.id and again.device_token == device  # kept, not reissued


def test_a_device_cookie_is_only_good_for_its_own_account_and_cannot_be_forged(session, redis_client, make_user):
    owner, other = make_user("admin"), make_user("basic")
    device = _login(session, redis_client, other.email, ip="1.2.3.4").device_token
    forged = f"v1.{owner.id}.{device.split('.')[2]}.{device.split('.')[3]}"
    assert login_throttle.device_user_id(forged) is None
    for _ in range(login_throttle.PAIR_FREE + 1):
        _fail(session, redis_client, owner.email, ip="1.2.3.4")
    for token in (device, forged, "v1.1.x.y", "garbage"):
        _fail(session, redis_client, owner.email, password=PASSWORD, ip="1.2.3.4", device=token)


def test_a_device_cookie_that_keeps_failing_loses_its_pass(session, redis_client, make_user):
    owner = make_user("admin")
    device = _login(session, redis_client, owner.email, ip="1.2.3.4").device_token
    for _ in range(login_throttle.DEVICE_MAX_FAILURES):  # a stolen cookie used to guess
        _fail(session, redis_client, owner.email, ip="1.2.3.4", device=device)
    _fail(session, redis_client, owner.email, password=PASSWORD, ip="1.2.3.4", device=device)
    assert _reasons(session)[-1] == "throttled"


def test_many_addresses_guessing_one_account_slow_unknown_browsers_only(session, redis_client, make_user, monkeypatch):
    monkeypatch.setattr(login_throttle, "ACCOUNT_FREE", 6)
    owner = make_user("admin")
    device = _login(session, redis_client, owner.email, ip="9.9.9.9").device_token
    for i in range(10):
        _fail(session, redis_client, owner.email, ip=f"10.0.0.{i}")
    assert _reasons(session).count("bad_credentials") == 7  # then the account waits for unknown browsers
    _fail(session, redis_client, owner.email, password=PASSWORD, ip="10.0.1.1")
    assert (
        auth.login(
            session=session,
            redis_client=redis_client,
            email=owner.email,
            password=PASSWORD,
            ip="10.0.1.2",
            device_token=device,
        ).user.id
        == owner.id
    )


def test_success_forgets_that_address_s_failures(session, redis_client, make_user):
    user = make_user("basic")
    for _ in range(login_throttle.PAIR_FREE):
        _fail(session, redis_client, user.email, ip="1.2.3.4")
    _login(session, redis_client, user.email, ip="1.2.3.4")
    for _ in range(login_throttle.PAIR_FREE):
        _fail(session, redis_client, user.email, ip="1.2.3.4")
    assert _login(session, redis_client, user.email, ip="1.2.3.4").user.id == user.id


def test_throttled_attempts_are_audited_once_a_minute_not_each(session, redis_client, make_user):
    user = make_user("basic")
    for _ in range(login_throttle.PAIR_FREE + 1):
        _fail(session, redis_client, user.email, ip="1.2.3.4")
    for _ in range(50):
        _fail(session, redis_client, user.email, ip="1.2.3.4")
    assert _reasons(session).count("throttled") == 1


def test_one_address_is_rate_limited_before_any_password_is_checked(session, redis_client, make_user, monkeypatch):
    monkeypatch.setattr(login_throttle, "RATE_PER_IP", 3)
    # One minute window for the whole test: four password checks on a busy runner can straddle a minute's end,
    # and the fourth attempt would then be the first of a new window.
    monkeypatch.setattr(login_throttle, "time", types.SimpleNamespace(time=lambda: 1_000_020.5))
    owner = make_user("basic")
    device = _login(session, redis_client, owner.email, ip="4.4.4.4").device_token  # 1 of the 3
    for i in range(2):
        _fail(session, redis_client, f"someone{i}@example.com", ip="4.4.4.4")
    _fail(session, redis_client, owner.email, password=PASSWORD, ip="4.4.4.4")  # the 4th this minute
    assert _audit(session, "auth.login")[-1].detail == {"reason": "throttled", "scope": "rate-ip"}
    # A known browser is exempt; another address is not affected.
    assert (
        auth.login(
            session=session,
            redis_client=redis_client,
            email=owner.email,
            password=PASSWORD,
            ip="4.4.4.4",
            device_token=device,
        ).user.id
        == owner.id
    )
    assert _login(session, redis_client, owner.email, ip="4.4.4.5").user.id == owner.id


def test_logins_from_everyone_are_rate_limited_per_second(redis_client, monkeypatch):
    monkeypatch.setattr(login_throttle, "RATE_GLOBAL", 3)
    monkeypatch.setattr(login_throttle, "time", types.SimpleNamespace(time=lambda: 1_000_000.5))  # one window
    answers = [login_throttle.admit(redis_client, f"10.1.0.{i}", trusted=i == 4) for i in range(5)]
    assert answers == [None, None, None, login_throttle.RATE_ALL, login_throttle.RATE_ALL]


def test_a_full_login_pool_refuses_at_once_with_the_generic_message(monkeypatch):
    monkeypatch.setattr(sign_in, "_slots", threading.BoundedSemaphore(1))
    sign_in._slots.acquire()  # every slot taken (checks running or queued)
    with pytest.raises(LoginFailed) as exc:
        asyncio.run(sign_in.sign_in(email="a@example.com", password="whatever-it-is"))
    assert str(exc.value) == LOGIN_FAILED_MESSAGE


def test_sign_in_runs_the_login_off_the_event_loop(session, redis_client, make_user):
    user = make_user("basic")
    threads = []
    real_login = auth.login

    def spy(**kwargs):
        threads.append(threading.current_thread().name)
        return real_login(**kwargs)

    auth.login = spy
    try:
        result = asyncio.run(sign_in.sign_in(email=user.email, password=PASSWORD, ip="1.1.1.1"))
    finally:
        auth.login = real_login
    assert result.user.id == user.id and result.device_token
    assert threads and threads[0].startswith("hubcast-login")


def test_unknown_email_gets_the_same_message_and_is_logged(session, redis_client, make_user):
    make_user("basic")
    _fail(session, redis_client, "nobody@example.com", password=PASSWORD, ip="1.2.3.4")
    entry = _audit(session, "auth.login")[-1]
    assert (entry.outcome, entry.actor_id, entry.actor_email, entry.ip) == (
        "refused",
        None,
        "nobody@example.com",
        "1.2.3.4",
    )
    assert entry.detail == {"reason": "bad_credentials"}
    # Guessing against a non-existent account is slowed the same way (no oracle through a different behaviour).
    for _ in range(login_throttle.PAIR_FREE + 1):
        _fail(session, redis_client, "nobody@example.com", ip="1.2.3.4")
    assert _audit(session, "auth.login")[-1].detail == {"reason": "throttled", "scope": "pair"}


@pytest.mark.parametrize(
    ("email", "password"), [("", PASSWORD), ("x@example.com", ""), ("a" * 255, PASSWORD), ("x@example.com", "p" * 257)]
)
def test_malformed_credentials_get_the_same_message(session, redis_client, email, password):
    _fail(session, redis_client, email, password=password)


def test_inactive_user_gets_the_same_message(session, redis_client, make_user):
    user = make_user("basic", active=False)
    _fail(session, redis_client, user.email, password=PASSWORD)
    assert _audit(session, "auth.login")[-1].detail == {"reason": "inactive"}


def test_successful_login_is_audited_and_stamped(session, redis_client, make_user):
    user = make_user("basic")
    _login(session, redis_client, user.email, ip="10.1.2.3")
    entry = _audit(session, "auth.login")[-1]
    assert (entry.outcome, entry.actor_id, entry.ip) == ("ok", user.id, "10.1.2.3")
    assert _fresh(session).get(User, user.id).last_login_at is not None


# --- user administration -----------------------------------------------------------------------


@pytest.mark.parametrize("role", [perm.BASIC, perm.ADVANCED])
def test_only_admins_manage_users(session, make_user, role):
    admin = make_user("admin")
    actor = make_user(role)
    before = _db_fingerprint(session)
    calls = [
        lambda: users_service.create_user(
            session=session, actor=actor, email="new@example.com", role="admin", password="long-password-123"
        ),
        lambda: users_service.list_users(session=session, actor=actor),
        lambda: users_service.change_role(session=session, actor=actor, user_id=admin.id, role="basic"),
        lambda: users_service.change_role(session=session, actor=actor, user_id=actor.id, role="admin"),
        lambda: users_service.set_active(session=session, actor=actor, user_id=admin.id, active=False),
    ]
    for call in calls:
        with pytest.raises(PermissionDenied) as exc:
            call()
        assert exc.value.capability == perm.USERS_MANAGE
        session.commit()  # even committing whatever the call left pending writes nothing
    assert _db_fingerprint(_fresh(session)) == before
    assert _fresh(session).get(User, admin.id).role == perm.ADMIN
    assert _fresh(session).get(User, actor.id).role == role


def test_inactive_or_missing_actor_is_refused(session, make_user):
    with pytest.raises(PermissionDenied):
        users_service.list_users(session=session, actor=None)


def test_admin_creates_users(session, make_user):
    admin = make_user("admin")
    user, generated = users_service.create_user(
        session=session, actor=admin, email=" New@Example.com ", role="Advanced", name=" New Person "
    )
    session.commit()
    assert (user.email, user.role, user.name) == ("new@example.com", perm.ADVANCED, "New Person")
    assert generated and len(generated) >= 16
    assert user.password_hash.startswith("$argon2id$") and generated not in user.password_hash
    entry = _audit(session, "user.create")[-1]
    assert entry.actor_id == admin.id and entry.detail == {"email": "new@example.com", "role": perm.ADVANCED}
    assert generated not in str(entry.detail)
    _, none_generated = users_service.create_user(
        session=session, actor=admin, email="two@example.com", role="basic", password="long-password-123"
    )
    assert none_generated is None


def test_duplicate_email_refused_with_a_clear_message(session, make_user):
    admin = make_user("admin")
    make_user("basic", email="taken@example.com")
    before = _db_fingerprint(session)
    for email in ("taken@example.com", "  TAKEN@example.com "):
        with pytest.raises(users_service.UserError) as exc:
            users_service.create_user(
                session=session, actor=admin, email=email, role="basic", password="long-password-123"
            )
        assert str(exc.value) == "A user with email taken@example.com already exists."
        session.commit()
    assert _db_fingerprint(_fresh(session)) == before


@pytest.mark.parametrize(
    ("email", "role", "password", "message"),
    [
        ("not-an-email", "basic", "long-password-123", "is not a valid email address"),
        ("", "basic", "long-password-123", "An empty value is not a valid email address"),
        ("ok@example.com", "superuser", "long-password-123", "Role must be one of"),
        ("ok@example.com", "basic", "short", "at least 12 characters"),
        ("ok@example.com", "basic", "123qweasdzxc", "most common passwords"),
    ],
)
def test_invalid_new_users_refused(session, make_user, email, role, password, message):
    admin = make_user("admin")
    before = _db_fingerprint(session)
    with pytest.raises(users_service.UserError, match=message):
        users_service.create_user(session=session, actor=admin, email=email, role=role, password=password)
    session.commit()
    assert _db_fingerprint(_fresh(session)) == before


def test_last_admin_cannot_be_demoted(session, make_user):
    admin = make_user("admin")
    before = _db_fingerprint(session)
    with pytest.raises(users_service.UserError, match="at least one active admin"):
        users_service.change_role(session=session, actor=admin, user_id=admin.id, role="basic")
    session.commit()
    assert _db_fingerprint(_fresh(session)) == before
    assert _fresh(session).get(User, admin.id).role == perm.ADMIN


def test_admin_can_be_demoted_while_another_admin_remains(session, make_user):
    first = make_user("admin")
    second = make_user("admin")
    users_service.change_role(session=session, actor=second, user_id=first.id, role="basic")
    session.commit()
    assert _fresh(session).get(User, first.id).role == perm.BASIC
    entry = _audit(session, "user.role")[-1]
    assert entry.detail == {"from": "admin", "to": "basic"} and entry.actor_id == second.id
    # Now `second` is the last admin.
    with pytest.raises(users_service.UserError, match="at least one active admin"):
        users_service.change_role(session=session, actor=second, user_id=second.id, role="advanced")


def test_inactive_admins_do_not_count_as_the_remaining_admin(session, make_user):
    active = make_user("admin")
    make_user("admin", active=False)
    with pytest.raises(users_service.UserError, match="at least one active admin"):
        users_service.change_role(session=session, actor=active, user_id=active.id, role="basic")


def test_admin_cannot_deactivate_self(session, make_user):
    admin = make_user("admin")
    make_user("admin")  # another admin exists, so only the self rule applies
    before = _db_fingerprint(session)
    with pytest.raises(users_service.UserError, match="cannot deactivate your own account"):
        users_service.set_active(session=session, actor=admin, user_id=admin.id, active=False)
    session.commit()
    assert _db_fingerprint(_fresh(session)) == before
    assert _fresh(session).get(User, admin.id).is_active


def test_change_of_a_missing_user_is_a_clear_error(session, make_user):
    admin = make_user("admin")
    with pytest.raises(users_service.UserError, match="no longer exists"):
        users_service.change_role(session=session, actor=admin, user_id=9999, role="basic")
    with pytest.raises(users_service.UserError, match="no longer exists"):
        users_service.set_active(session=session, actor=admin, user_id=9999, active=False)


def test_first_admin_is_created_once(session):
    created = users_service.ensure_first_admin(session=session, email="Boss@Example.com", password=None)
    session.commit()
    assert created is not None
    user, generated = created
    assert user.role == perm.ADMIN and user.email == "boss@example.com" and generated
    assert users_service.ensure_first_admin(session=session, email="other@example.com", password=None) is None
