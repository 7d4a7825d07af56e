"""Issue 13 item 8: password changes, attacked through the real services on a real database and Redis.

- a change with the wrong current password changes nothing (hash, sessions), is audited, and repeated
  guesses are throttled like logins (a stolen session cannot guess the password quickly either);
- a change ends every other session of the account (a thief's included) and keeps the one that made it;
- common and easily guessed passwords are refused, also when an admin or the CLI sets them;
- only an admin resets someone else's password; the reset ends all of that user's sessions.
"""

from __future__ import annotations

import pytest
from sqlmodel import select

from app.domain import permissions as perm
from app.domain.passwords import verify_password
from app.models import AuditLog, User
from app.services.accounts import auth, passwords
from tests.support.hardening import record
from tests.support.stores import PASSWORD

NEW = "violet lantern orbit 42"


def _login(session, redis_client, user, password=PASSWORD, ip="203.0.113.5") -> str:
    return auth.login(
        session=session, redis_client=redis_client, email=user.email, password=password, ip=ip
    ).session_secret


def _alive(session, secret: str) -> bool:
    session.expire_all()
    return auth.resolve_session(session=session, secret=secret) is not None


def _hash(session, user_id: int) -> str:
    session.expire_all()
    return session.get(User, user_id).password_hash


def test_a_wrong_current_password_changes_nothing_and_guessing_is_throttled(session, make_user, redis_client):
    user = make_user(perm.BASIC)
    mine, other = _login(session, redis_client, user), _login(session, redis_client, user, ip="198.51.100.4")
    before = _hash(session, user.id)
    outcomes = []
    for guess in ["wrong password one", "wrong password two", "wrong password three", "wrong password four"]:
        try:
            passwords.change_own_password(
                session=session,
                actor=user,
                current_password=guess,
                new_password=NEW,
                confirm_password=NEW,
                session_secret=mine,
                ip="198.51.100.66",
            )
            outcomes.append("changed")
        except passwords.PasswordError as exc:
            outcomes.append(str(exc))
        session.rollback()
    # The right current password while the guesser's wait runs: refused too (the wait is per account).
    try:
        passwords.change_own_password(
            session=session,
            actor=user,
            current_password=PASSWORD,
            new_password=NEW,
            confirm_password=NEW,
            session_secret=mine,
            ip="198.51.100.66",
        )
        right_during_wait = "changed"
    except passwords.PasswordError as exc:
        right_during_wait = str(exc)
    unchanged = _hash(session, user.id) == before and verify_password(before, PASSWORD)
    sessions_kept = _alive(session, mine) and _alive(session, other)
    audited = session.exec(
        select(AuditLog).where(AuditLog.action == "user.password_change", AuditLog.outcome == "refused")
    ).all()
    ok = (
        "changed" not in outcomes
        and outcomes[0] == passwords.WRONG_CURRENT
        and right_during_wait == passwords.TOO_MANY
        and unchanged
        and sessions_kept
    )
    record(
        "handlers",
        "change password with a wrong current password (4 guesses, then the right one while throttled)",
        ok=ok,
        checked=len(outcomes) + 1,
        refused_correctly=sum(o != "changed" for o in outcomes) + int(right_during_wait != "changed"),
        allowed_correctly=0,
        right_one_while_throttled=right_during_wait[:40],
        audited_refusals=len(audited),
    )
    assert outcomes[0] == passwords.WRONG_CURRENT and "changed" not in outcomes, outcomes
    assert set(outcomes) <= {passwords.WRONG_CURRENT, passwords.TOO_MANY}, outcomes
    assert right_during_wait == passwords.TOO_MANY, (outcomes, right_during_wait)
    assert unchanged and sessions_kept
    assert len(audited) >= 1 and all(a.actor_id == user.id for a in audited)


def test_a_password_change_ends_every_other_session(session, make_user, redis_client):
    user = make_user(perm.ADVANCED)
    mine = _login(session, redis_client, user)
    thief = _login(session, redis_client, user, ip="198.51.100.9")  # a stolen or forgotten session
    laptop = _login(session, redis_client, user, ip="203.0.113.77")
    ended = passwords.change_own_password(
        session=session,
        actor=user,
        current_password=PASSWORD,
        new_password=NEW,
        confirm_password=NEW,
        session_secret=mine,
        ip="203.0.113.5",
    )
    alive = {"this one": _alive(session, mine), "thief": _alive(session, thief), "laptop": _alive(session, laptop)}
    old_works = verify_password(_hash(session, user.id), PASSWORD)
    new_works = verify_password(_hash(session, user.id), NEW)
    ok = ended == 2 and alive == {"this one": True, "thief": False, "laptop": False} and new_works and not old_works
    record(
        "handlers",
        "password change ends the account's other sessions (2 others, the changing one kept)",
        ok=ok,
        checked=3,
        refused_correctly=int(not alive["thief"]) + int(not alive["laptop"]),
        allowed_correctly=int(alive["this one"]),
        sessions_ended=ended,
    )
    assert ended == 2 and alive == {"this one": True, "thief": False, "laptop": False}
    assert new_works and not old_works


@pytest.mark.parametrize("via", ["own change", "cli"])  # an admin's reset generates the password
def test_common_passwords_are_refused_everywhere(session, make_user, redis_client, via):
    user = make_user(perm.BASIC)
    secret = _login(session, redis_client, user)
    before = _hash(session, user.id)
    tried = {}
    for candidate in ["123qweasdzxc", "password1234", "qwertyuiop12", "short"]:
        try:
            if via == "own change":
                passwords.change_own_password(
                    session=session,
                    actor=user,
                    current_password=PASSWORD,
                    new_password=candidate,
                    confirm_password=candidate,
                    session_secret=secret,
                )
            else:
                passwords.set_password_cli(session=session, email=user.email, password=candidate)
            tried[candidate] = "accepted"
        except passwords.PasswordError as exc:
            tried[candidate] = str(exc)
        session.rollback()
    unchanged = _hash(session, user.id) == before and _alive(session, secret)
    refused = sum(v != "accepted" for v in tried.values())
    record(
        "input",
        f"common / short passwords refused ({via})",
        ok=refused == len(tried) and unchanged,
        detail="; ".join(f"{k}: {v[:60]}" for k, v in tried.items()),
    )
    assert refused == len(tried), tried
    assert unchanged


def test_only_an_admin_resets_a_password_and_the_reset_ends_the_users_sessions(session, make_user, redis_client):
    admin, advanced, victim = make_user(perm.ADMIN), make_user(perm.ADVANCED), make_user(perm.BASIC)
    victim_session = _login(session, redis_client, victim)
    before = _hash(session, victim.id)
    try:
        passwords.reset_password(session=session, actor=advanced, user_id=victim.id)
        by_advanced = "allowed"
    except perm.PermissionDenied:
        by_advanced = "refused"
    session.rollback()
    untouched = _hash(session, victim.id) == before and _alive(session, victim_session)
    user, generated = passwords.reset_password(session=session, actor=admin, user_id=victim.id)
    session.commit()
    new_works = verify_password(_hash(session, victim.id), generated)
    old_works = verify_password(_hash(session, victim.id), PASSWORD)
    ended = not _alive(session, victim_session)
    ok = by_advanced == "refused" and untouched and new_works and not old_works and ended
    record(
        "handlers",
        "password reset: by an advanced user (refused), by an admin (new password, sessions ended)",
        ok=ok,
        checked=2,
        refused_correctly=int(by_advanced == "refused" and untouched),
        allowed_correctly=int(new_works and ended),
    )
    assert by_advanced == "refused" and untouched
    assert new_works and not old_works and ended and len(generated) >= 16
