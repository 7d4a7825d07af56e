"""Issue 13 item 4: the session is bound to the browser's cookie, not to the Reflex tab token.

A tab token sits in the page's sessionStorage (any injected script, a shared screen or a copied state
dump reveals it) and the server keeps the tab's state, session secret included, under it. The attack:
open a websocket with a signed-in tab's token after that tab closed, without the cookie, and call an
admin handler. Every event must compare the state's secret with the cookie of the connection that
carried it; a connection without it is nobody. Over the app's real Reflex event path
(tests/support/reflex_client.py), against the real database and Redis.
"""

from __future__ import annotations

from sqlmodel import Session, select

from app.db import get_engine
from app.domain import permissions as perm
from app.models import AuditLog, User
from state.login import LoginState
from state.users import UsersState
from tests.support.hardening import record
from tests.support.reflex_client import cookie_for, event_name, last_audit_id
from tests.support.stores import PASSWORD


def _role(user_id: int) -> str:
    with Session(get_engine()) as s:
        return s.get(User, user_id).role


def _set_role(user_id: int, role: str) -> None:
    with Session(get_engine()) as s:
        user = s.get(User, user_id)
        user.role = role
        s.add(user)
        s.commit()


def test_a_replayed_tab_token_without_the_cookie_acts_as_nobody(world, redis_client, reflex_backend):
    cookie, admin = cookie_for(world, perm.ADMIN, redis_client)
    attacker = world["make_user"](perm.BASIC)
    promote = (event_name(UsersState, "change_role"), {"user_id": str(attacker.id), "role": "admin"})

    async def scenario(new_client):
        tab = new_client()
        await tab.connect(cookie, path="/users")
        await tab.send(event_name(UsersState, "load"), {}, path="/users")
        loaded = (await tab.substate(UsersState)).loaded
        await tab.close()  # the admin closes the tab; its state (and secret) stays on the server
        outcomes = {}
        last_id = last_audit_id()
        own_cookie, _ = cookie_for(world, perm.BASIC, redis_client)
        for name, kwargs in {
            # the stolen token alone: no hydrate, so the server's state stays as the admin's tab left it
            "token only, no hydrate": {"cookie": None, "hydrate": False},
            # the stolen token plus the secret in the boot event's vars, but no cookie in the handshake
            "secret in vars, no cookie": {"cookie": cookie, "handshake_cookie": ""},
            # the stolen token with the thief's own (valid, basic) session cookie in the handshake
            "another user's cookie": {"cookie": None, "hydrate": False, "handshake_cookie": own_cookie},
        }.items():
            thief = new_client(ip="198.51.100.9")
            thief.token = tab.token
            await thief.connect(path="/users", **kwargs)
            out = await thief.send(*promote, path="/users")
            outcomes[name] = (_role(attacker.id), out.redirects(), out.texts())
            await thief.close()
            _set_role(attacker.id, perm.BASIC)  # each case starts from the same place
        # Control: the admin's own browser comes back (same token, its cookie in the handshake).
        back = new_client()
        back.token = tab.token
        await back.connect(cookie, path="/users")
        allowed = await back.send(
            event_name(UsersState, "change_role"), {"user_id": str(attacker.id), "role": "advanced"}, path="/users"
        )
        await back.close()
        return loaded, outcomes, last_id, allowed

    loaded, outcomes, last_id, allowed = reflex_backend(scenario)
    with Session(get_engine()) as s:
        refused_rows = s.exec(select(AuditLog).where(AuditLog.id > last_id, AuditLog.action == "user.role")).all()
    refused = {name: role == perm.BASIC for name, (role, _, _) in outcomes.items()}
    role_after = _role(attacker.id)
    ok = loaded and all(refused.values()) and role_after == perm.ADVANCED
    record(
        "handlers",
        "replayed tab token without the session cookie (token only / secret in vars / another user's cookie)",
        ok=ok,
        checked=len(outcomes) + 1,
        refused_correctly=sum(refused.values()),
        allowed_correctly=int(role_after == perm.ADVANCED),
        role_changes_by_thief=len([r for r in refused_rows if r.actor_id == admin.id and "admin" in str(r.detail)]),
    )
    assert loaded
    assert refused == dict.fromkeys(outcomes, True), outcomes
    assert all("/login" in str(redirects) for _, redirects, _ in outcomes.values()), outcomes
    assert role_after == perm.ADVANCED, "the admin's own browser (cookie in the handshake) was refused"
    assert "is now" in allowed.texts()


def test_the_socket_that_signed_in_is_trusted_until_it_reconnects(world, redis_client, reflex_backend):
    """The login form runs on a socket opened before the cookie existed: that connection keeps working
    after the login; a new connection with the same token and no cookie is nobody."""
    admin = world["make_user"](perm.ADMIN)

    async def scenario(new_client):
        tab = new_client()
        await tab.connect("", path="/login")
        await tab.send(
            event_name(LoginState, "submit"), {"form": {"email": admin.email, "password": PASSWORD}}, path="/login"
        )
        secret = (await tab.substate(LoginState)).session_secret
        await tab.send(event_name(UsersState, "load"), {}, path="/users")
        same_socket = (await tab.substate(UsersState)).loaded
        await tab.close()
        thief = new_client(ip="198.51.100.9")
        thief.token = tab.token
        await thief.connect(None, path="/users", hydrate=False)
        out = await thief.send(event_name(UsersState, "open_create"), {}, path="/users")
        thief_opened = (await thief.substate(UsersState)).dialog_open
        await thief.close()
        return secret, same_socket, thief_opened, out

    secret, same_socket, thief_opened, out = reflex_backend(scenario)
    ok = bool(secret) and same_socket and not thief_opened
    record(
        "handlers",
        "the login's own socket keeps its session; a new socket with that token and no cookie does not",
        ok=ok,
        checked=2,
        refused_correctly=int(not thief_opened),
        allowed_correctly=int(same_socket),
    )
    assert secret and same_socket
    assert not thief_opened and "/login" in str(out.redirects())
