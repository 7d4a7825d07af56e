"""Issue 6 items 10 and 12: crafted websocket events against every handler, and attacks on the login.

Everything travels the real Reflex event path in-process (the app's EventNamespace, event processor,
state lock and middleware), through the machinery of tests/integration/test_handler_permissions.py,
imported as is: its enumeration of every handler, its crafted payloads, its refusal/allowance checks.
Where that file checks one case per test, item 10 here sweeps every handler × every caller in one go
and records the counts for the hardening report (kind "handlers").
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from sqlalchemy import update
from sqlmodel import Session, select

import tests.integration.test_handler_permissions as handler_perms
from app.db import get_engine
from app.domain import permissions as perm
from app.models import AuditLog, User, UserSession
from app.services.accounts import auth
from app.services.accounts.auth import LOGIN_FAILED_MESSAGE
from app.settings import get_settings
from app.timeutil import utcnow
from state.base import AppState
from state.campaigns import CampaignsState
from state.login import LoginState
from state.users import UsersState
from tests.hardening.report import record
from tests.integration.test_handler_permissions import (  # noqa: F401  (fixtures, used by name)
    ALLOWED_CASES, CALLERS, PUBLIC, REFUSED_CASES, UpdateVarsInternalState, _page_for, assert_allowed,
    assert_refused, cookie_for, crafted_payload, db_fingerprint, event_name, last_audit_id, reflex_backend, world,
)

PASSWORD = "correct horse battery"
STRANGERS = (handler_perms.ANONYMOUS, handler_perms.FORGED)
# test_crafted_setters_cannot_raise_a_role sends 6 crafted setters, then a UsersState.load that must be refused.
INTEGRATION_SETTER_EVENTS = 7


def _restore_victim() -> None:
    """An allowed handler may demote or deactivate user 1 (the crafted target); the next case needs it as it was."""
    with Session(get_engine()) as s:
        victim = s.get(User, 1)
        victim.role, victim.is_active = perm.ADMIN, True
        s.add(victim)
        s.commit()


def _fresh_sessions() -> None:
    """A session seen a minute ago gets its last_seen_at touched by the next event (a legitimate write):
    the sweep outlasts a minute, so mark every session as just seen before each case's "nothing changed"."""
    with Session(get_engine()) as s:
        s.execute(update(UserSession).where(UserSession.revoked_at.is_(None)).values(last_seen_at=utcnow()))
        s.commit()


# --- item 10: every handler × every caller -------------------------------------------------------

@pytest.mark.timeout(900)  # 750 crafted events, each followed by a checksum of every table
def test_every_handler_for_every_caller_as_crafted_events(world, redis_client, reflex_backend):
    cookies = {caller: cookie_for(world, caller, redis_client) for caller in CALLERS}
    failures: list[str] = []
    counts = {"public": 0, "refused": 0, "allowed": 0}

    async def one(new_client, cls, handler, caller, client=None, snapshots=True):
        """One crafted event; on `client` when given (a tab that already sent others), else on a fresh tab."""
        own = client is None
        if own:
            client = new_client()
            await client.connect(cookies[caller][0])
        if snapshots:
            _fresh_sessions()
        before_db = db_fingerprint() if snapshots else None
        before_vars = await client.vars_snapshot() if snapshots else None
        last_id = last_audit_id()
        outcome = await client.send(event_name(cls, handler), crafted_payload(cls.event_handlers[handler].fn),
                                    path=_page_for(cls))
        after_vars = await client.vars_snapshot() if snapshots else None
        sub = await client.substate(cls)
        if own:
            await client.close()
        return before_db, before_vars, last_id, outcome, after_vars, sub

    async def scenario(new_client):
        # Public handlers first: the allowed `create_user` below creates the very account the crafted login
        # form names, which would turn a stranger's crafted login into a real one.
        for cls, handler in PUBLIC:
            for caller in STRANGERS:
                before_db, _, _, outcome, after, _ = await one(new_client, cls, handler, caller)
                try:
                    assert not outcome.exceptions, outcome.exceptions
                    assert db_fingerprint() == before_db
                    assert not after["AppState.signed_in"] and after["AppState.user_role"] == ""
                    assert all(not v for k, v in after.items() if k.endswith(".rows"))
                    counts["public"] += 1
                except AssertionError as exc:
                    failures.append(f"public {cls.__name__}.{handler} as {caller}: {exc}")
        # One tab per caller sends every event it must be refused: a refusal changes nothing, so each event
        # meets the state the previous ones left, as in a real attacker's tab.
        tabs = {}
        for caller in CALLERS:
            tabs[caller] = new_client()
            await tabs[caller].connect(cookies[caller][0])
        for param in REFUSED_CASES:
            cls, handler, capability, caller = param.values
            before_db, before_vars, last_id, outcome, after_vars, _ = await one(new_client, cls, handler, caller,
                                                                                tabs[caller])
            try:
                assert_refused(cls, handler, capability, caller, cookies[caller][1], last_id, outcome, before_db,
                               before_vars, after_vars)
                counts["refused"] += 1
            except AssertionError as exc:
                failures.append(f"refused {cls.__name__}.{handler} as {caller}: {str(exc)[:300]}")
        for tab in tabs.values():
            await tab.close()
        # Handlers whose effect is checked run first: later ones (delete_*) may remove what `load` must show.
        for param in sorted(ALLOWED_CASES, key=lambda p: handler_perms._expected_effect(*p.values[:2]) is None):
            cls, handler, capability, caller = param.values
            _, _, last_id, outcome, _, sub = await one(new_client, cls, handler, caller, snapshots=False)
            try:
                assert_allowed(cls, handler, last_id, outcome, sub)
                counts["allowed"] += 1
            except AssertionError as exc:
                failures.append(f"allowed {cls.__name__}.{handler} as {caller}: {str(exc)[:300]}")
            _restore_victim()

    reflex_backend(scenario)
    checked = len(PUBLIC) * len(STRANGERS) + len(REFUSED_CASES) + len(ALLOWED_CASES)
    record("handlers", "every event handler × every caller (no session, forged cookie, basic, advanced, admin)",
           ok=not failures, checked=checked, refused_correctly=counts["refused"], allowed_correctly=counts["allowed"],
           public_harmless=counts["public"], handlers=len(handler_perms.GUARDED) + len(PUBLIC),
           must_refuse=len(REFUSED_CASES), failures=len(failures), first_failure=failures[0][:300] if failures else "")
    assert not failures, "\n".join(failures[:20])
    assert counts["refused"] == len(REFUSED_CASES) >= 30 and counts["allowed"] == len(ALLOWED_CASES) >= 30


def test_crafted_setters_for_role_or_identity_have_no_effect(world, redis_client, reflex_backend):
    """The integration test's crafted setters (role, signed_in, session secret via setvar and
    update_vars_internal), then forged identity vars naming the admin, then a privileged call."""
    handler_perms.test_crafted_setters_cannot_raise_a_role(world, redis_client, reflex_backend)
    cookie, basic = cookie_for(world, perm.BASIC, redis_client)
    victim = world["victim"]
    app_state = AppState.get_full_name()

    async def scenario(new_client):
        client = new_client()
        await client.connect(cookie)
        sent = {}
        for name, payload in [
            (event_name(UpdateVarsInternalState, "update_vars_internal"),
             {"vars": {f"{app_state}.user_email": victim.email, f"{app_state}.user_role": "admin",
                       f"{app_state}.signed_in": True, f"{app_state}.user_name": "Admin"}}),
            (f"{app_state}.set_user_email", {"value": victim.email}),
            (f"{app_state}.set_user_id", {"value": victim.id}),
            (f"{UsersState.get_full_name()}.setvar", {"var_name": "user_email", "value": victim.email}),
        ]:
            sent[name] = await client.send(name, payload)
        app = await client.substate(AppState)
        email_after = app.user_email
        # Worst case, the display vars say "the admin": the server still resolves the caller from the cookie.
        users = await client.substate(UsersState)
        users.user_email, users.user_role, users.signed_in = victim.email, "admin", True
        last_id = last_audit_id()
        promote = await client.send(event_name(UsersState, "change_role"), {"user_id": str(basic.id), "role": "admin"},
                                    path="/users")
        await client.close()
        return sent, email_after, last_id, promote

    sent, email_after, last_id, promote = reflex_backend(scenario)
    with Session(get_engine()) as s:
        assert s.get(User, basic.id).role == perm.BASIC
        refused = s.exec(select(AuditLog).where(AuditLog.id > last_id)).all()
    assert [(a.action, a.target_id, a.actor_id) for a in refused] == [
        ("permission.refused", "UsersState.change_role", basic.id)]
    assert "You don't have permission to do that." in promote.texts()
    assert email_after != victim.email
    record("handlers", "crafted setters for role / user id / identity (setvar, set_*, update_vars_internal)",
           ok=True, checked=len(sent) + 1 + INTEGRATION_SETTER_EVENTS,
           refused_correctly=len(sent) + 1 + INTEGRATION_SETTER_EVENTS, allowed_correctly=0)


# --- item 12: login ----------------------------------------------------------------------------------

def _audit(action: str, after: int = 0) -> list[AuditLog]:
    with Session(get_engine()) as s:
        return list(s.exec(select(AuditLog).where(AuditLog.action == action, AuditLog.id > after)
                           .order_by(AuditLog.id)).all())


def test_200_wrong_passwords_with_spoofed_forwarded_for_are_throttled(world, redis_client, reflex_backend):
    victim = world["make_user"](perm.ADMIN, email="target@example.com")
    limit = get_settings().login_max_failures
    submit = event_name(LoginState, "submit")

    async def scenario(new_client):
        errors = []
        for i in range(200):  # every attempt from a "new" address, and a new spoofed X-Forwarded-For
            client = new_client(ip=f"203.0.113.{i % 250}")
            await client.connect("", forwarded_for=f"198.51.100.{i % 250}, 10.0.0.{i % 250}")
            out = await client.send(submit, {"form": {"email": victim.email, "password": f"guess-{i:03d}-wrong"}})
            errors.append(((await client.substate(LoginState)).error, out.redirects()))
            await client.close()
        client = new_client(ip="192.0.2.1")
        await client.connect("", forwarded_for="127.0.0.1")
        right = await client.send(submit, {"form": {"email": victim.email, "password": PASSWORD}})
        final = (await client.substate(LoginState)).error, right.redirects(), (await client.substate(AppState)).signed_in
        await client.close()
        return errors, final

    errors, final = reflex_backend(scenario)
    refused = [a for a in _audit("auth.login") if a.outcome == "refused"]
    reasons = [a.detail["reason"] for a in refused]
    with Session(get_engine()) as s:
        sessions = s.exec(select(UserSession).where(UserSession.user_id == victim.id)).all()
    ok = (all(e == (LOGIN_FAILED_MESSAGE, []) for e in errors) and final == (LOGIN_FAILED_MESSAGE, [], False)
          and reasons == ["bad_credentials"] * limit + ["throttled"] * (201 - limit) and sessions == []
          and all(not a.ip.startswith(("198.51.100.", "10.0.0.")) for a in refused))
    record("handlers", "login: 200 wrong passwords, spoofed X-Forwarded-For, then the right one",
           ok=ok, checked=201, refused_correctly=sum(1 for e in errors if e[0] == LOGIN_FAILED_MESSAGE)
           + (final[0] == LOGIN_FAILED_MESSAGE), allowed_correctly=0, passwords_checked=reasons.count("bad_credentials"),
           throttled=reasons.count("throttled"))
    assert all(e == (LOGIN_FAILED_MESSAGE, []) for e in errors)
    assert final == (LOGIN_FAILED_MESSAGE, [], False)  # even the right password, once throttled
    assert reasons == ["bad_credentials"] * limit + ["throttled"] * (201 - limit)
    assert sessions == []
    assert {a.ip for a in refused} <= {f"203.0.113.{i}" for i in range(250)} | {"192.0.2.1"}  # not the header


def test_session_id_rotates_at_login(world, redis_client, reflex_backend):
    handler_perms.test_login_event_issues_a_new_server_generated_secret(world, redis_client, reflex_backend)
    record("handlers", "session id rotates at login (attacker-chosen and previous cookies)", ok=True, checked=2,
           refused_correctly=2, allowed_correctly=0)


def _expire(user_id: int, **changes) -> None:
    with Session(get_engine()) as s:
        for row in s.exec(select(UserSession).where(UserSession.user_id == user_id)).all():
            for key, value in changes.items():
                setattr(row, key, value)
            s.add(row)
        s.commit()


def test_logout_deactivation_and_expiry_end_sessions(world, redis_client, reflex_backend):
    """Each ended session is refused on its very next event, through the real event path."""
    admin_cookie, admin = cookie_for(world, perm.ADMIN, redis_client)
    cases = {}
    for name in ("logout", "deactivated", "idle", "absolute"):
        cases[name] = cookie_for(world, perm.ADVANCED, redis_client)
    load = event_name(CampaignsState, "load")

    async def scenario(new_client):
        seen = {}
        # Each browser tab works, then its session ends in one of four ways.
        tabs = {}
        for name, (cookie, _user) in cases.items():
            tab = new_client()
            await tab.connect(cookie)
            before = await tab.send(load, {}, path="/campaigns")
            tabs[name] = (tab, before)
        await tabs["logout"][0].send(event_name(AppState, "logout"), {})
        admin_tab = new_client()
        await admin_tab.connect(admin_cookie)
        await admin_tab.send(event_name(UsersState, "set_active"),
                             {"user_id": str(cases["deactivated"][1].id), "active": False}, path="/users")
        await admin_tab.close()
        _expire(cases["idle"][1].id, last_seen_at=utcnow() - timedelta(minutes=get_settings().session_idle_minutes + 1))
        _expire(cases["absolute"][1].id, expires_at=utcnow() - timedelta(seconds=1))
        for name, (tab, before) in tabs.items():
            last_id = last_audit_id()
            if name == "logout":  # the tab itself forgot the cookie: replay the old cookie from another tab
                replay = new_client()
                await replay.connect(cases[name][0])
                after = await replay.send(load, {}, path="/campaigns")
                await replay.close()
            else:
                after = await tab.send(load, {}, path="/campaigns")
            refusals = [a.target_id for a in handler_perms.audit_rows_after(last_id) if a.action == "permission.refused"]
            seen[name] = (before, after, refusals)
            await tab.close()
        return seen

    seen = reflex_backend(scenario)
    with Session(get_engine()) as s:
        still = {name: auth.resolve_session(session=s, secret=cookie) for name, (cookie, _) in cases.items()}
    outcomes = {}
    for name, (before, after, refusals) in seen.items():
        outcomes[name] = (before.redirects() == [] and "don't have permission" not in before.texts(),
                          after.redirects() == ["/login"] and "Your session has ended" in after.texts(),
                          refusals == ["CampaignsState.load"], still[name] is None)
    ok = all(all(v) for v in outcomes.values())
    record("handlers", "logout, deactivation, idle and absolute expiry end the session (next event refused)",
           ok=ok, checked=len(outcomes), refused_correctly=sum(all(v) for v in outcomes.values()), allowed_correctly=0)
    assert outcomes == {name: (True, True, True, True) for name in cases}, outcomes
