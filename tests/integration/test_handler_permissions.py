"""Every State event handler refuses a caller without the right role, sent as a crafted websocket event.

Reflex makes every public method of a State class callable by name over the websocket; hiding a
button protects nothing. So this test:

1. enumerates every event handler of every State class below `state.base.AppState` (and checks that
   no other user-defined State exists), from the class tree *and* from Reflex's own handler registry,
   and fails on any handler that carries neither `@requires(capability)` nor `@public_handler(reason)`;
   the only exception is `setvar`, which Reflex 0.10.1 adds to every State (see REFLEX_ADDED_HANDLERS);
2. for every guarded handler and every caller that lacks its capability (no session cookie, a forged
   cookie, basic, advanced, admin), sends the handler as a crafted event with crafted arguments that
   would change or reveal data if the check were missing, and asserts that it was refused (a toast
   error, plus a redirect to /login without a session), that an AuditLog row "permission.refused"
   names `Class.handler`, and that nothing else changed: no table except audit_log changed (row counts
   and a checksum of every row) and no var of the state tree changed (so no data reached the browser);
3. for every guarded handler and every role that has the capability, sends the same event and asserts
   that it was *not* refused (and, where a handler has a visible effect, that it happened): this proves
   the refusal assertions can fail.

How the crafted event travels (the real Reflex path, in-process): the test starts the app's own event
processor through `App._setup_event_processor()` (what the ASGI lifespan does), then opens a "socket"
on the app's real `EventNamespace`: `on_connect(sid, environ, auth={"event": <hydrate_and_load>})`
with the cookie value in the boot event's `vars` (exactly how the browser hands its cookies to the
server), then `on_event(sid, {"name": "<state full name>.<handler>", "payload": {...},
"router_data": {...}})`. From there Reflex does everything itself: token lookup by socket id, router
data and client IP from the connection, the processor queue, the state lock, middleware, payload
conversion by type hints, and the handler call. Only two things are replaced: the namespace's
`emit` (there is no browser socket; the test records what would be sent) and the state manager (an
in-memory one per test, instead of the disk manager the config picks, so tests do not share states).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import inspect
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
import reflex as rx
from reflex.istate.manager.memory import StateManagerMemory
from reflex.istate.manager.token import BaseStateToken
from reflex.state import State, UpdateVarsInternalState
from reflex_base.registry import RegistrationContext
from sqlmodel import Session, SQLModel, select

import app.app as app_module  # registers every page and State
from app.db import get_engine
from app.domain import permissions as perm
from app.models import (
    AuditLog, Campaign, Channel, Contact, ContactIdentity, ContactList, ListMembership, Segment, Template, User,
)
from app.services.accounts import auth
from state.base import LOGIN_ROUTE, AppState
from state.guard import CAPABILITY_ATTR, PUBLIC_ATTR
from state.login import LoginState
from state.users import UsersState

RX_APP = app_module.app

# Handlers Reflex 0.10.1 itself adds to every State class (found by listing `event_handlers` of each
# State in this app): only `setvar`. It calls `set_<name>` on the state, and with state_auto_setters
# off (asserted below) the only `set_*` methods are our own handlers, which are guarded themselves
# (test_setvar_cannot_bypass_a_guard). Reflex's other internal handlers (`hydrate`,
# `hydrate_and_load`, `set_is_hydrated` on the root State; `on_load_internal`, `update_vars_internal`,
# `handle_frontend_exception` on Reflex's own substates) live on Reflex's classes, not under AppState.
REFLEX_ADDED_HANDLERS = frozenset({"setvar"})
REFLEX_ROOT_HANDLERS = frozenset({"hydrate", "hydrate_and_load", "set_is_hydrated", "setvar"})
# Every handler name Reflex 0.10.1 registers outside the AppState tree (root State and its internal
# substates). A Reflex upgrade that adds one fails test_reflex_registry_matches_the_enumeration, so
# that someone looks at what the new handler lets a browser do.
REFLEX_INTERNAL_HANDLERS = REFLEX_ROOT_HANDLERS | {"update_vars_internal", "on_load_internal",
                                                   "handle_frontend_exception"}


# --- enumeration -------------------------------------------------------------------------------

def _state_classes(root: type[rx.State]) -> list[type[rx.State]]:
    found, todo = [], [root]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(sorted(cls.get_substates(), key=lambda c: c.get_full_name()))
    return sorted(found, key=lambda c: c.get_full_name())


APP_STATES = _state_classes(AppState)


def _handlers() -> list[tuple[type[rx.State], str, Any]]:
    return [(cls, name, handler.fn) for cls in APP_STATES for name, handler in sorted(cls.event_handlers.items())
            if name not in REFLEX_ADDED_HANDLERS]


def _capability(fn) -> str | None:
    return getattr(fn, CAPABILITY_ATTR, None)


GUARDED = [(cls, name, _capability(fn)) for cls, name, fn in _handlers() if _capability(fn)]
PUBLIC = [(cls, name) for cls, name, fn in _handlers() if getattr(fn, PUBLIC_ATTR, None) and not _capability(fn)]

# Callers: no cookie at all, a made-up cookie, and a real session for each role.
ANONYMOUS, FORGED = "anonymous", "forged-cookie"
CALLERS = (ANONYMOUS, FORGED, perm.BASIC, perm.ADVANCED, perm.ADMIN)


def _role(caller: str) -> str | None:
    return None if caller in (ANONYMOUS, FORGED) else caller


REFUSED_CASES = [pytest.param(cls, name, cap, caller, id=f"{cls.__name__}.{name}-{caller}")
                 for cls, name, cap in GUARDED for caller in CALLERS if not perm.can(_role(caller), cap)]
ALLOWED_CASES = [pytest.param(cls, name, cap, caller, id=f"{cls.__name__}.{name}-{caller}")
                 for cls, name, cap in GUARDED for caller in CALLERS if perm.can(_role(caller), cap)]

# Crafted arguments: what an attacker would send so that a handler without its check WOULD change
# or reveal something (user 1 is the first admin; the form creates an admin).
CRAFTED_FORM = {"email": "x@y.z", "role": "admin", "password": "long-password-123", "name": "Mallory"}
CRAFTED_BY_NAME: dict[str, Any] = {"form": CRAFTED_FORM, "user_id": "1", "role": "basic", "active": False,
                                   "value": "draft"}
CRAFTED_BY_TYPE: dict[str, Any] = {"dict": CRAFTED_FORM, "bool": True, "int": 1, "str": "1"}


def crafted_payload(fn) -> dict[str, Any]:
    payload = {}
    for name, param in list(inspect.signature(fn).parameters.items())[1:]:  # skip self
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if name in CRAFTED_BY_NAME:
            payload[name] = CRAFTED_BY_NAME[name]
        else:
            annotation = param.annotation if isinstance(param.annotation, str) else getattr(
                param.annotation, "__name__", "str")
            payload[name] = CRAFTED_BY_TYPE.get(annotation.split("[")[0], "1")
    return payload


def event_name(cls: type[rx.State], handler: str) -> str:
    return f"{cls.get_full_name()}.{handler}"


def _page_for(cls: type[rx.State]) -> str:
    """The route whose on_load runs one of `cls`'s handlers (where a real browser would send from)."""
    for route in RX_APP._unevaluated_pages:
        for ev in RX_APP.get_load_events(route) or []:
            if getattr(ev, "state", None) is cls or getattr(ev, "state_full_name", "") == cls.get_full_name():
                return "/" + ("" if route == "index" else route.strip("/"))
    return LOGIN_ROUTE


# --- database fingerprints ---------------------------------------------------------------------

def db_fingerprint() -> dict[str, tuple[int, str]]:
    """Row count and a checksum of all rows of every table except audit_log."""
    out = {}
    with get_engine().connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            if table.name == AuditLog.__tablename__:
                continue
            rows = conn.execute(table.select().order_by(*table.primary_key.columns)).all()
            digest = hashlib.sha256(repr([tuple(map(repr, r)) for r in rows]).encode()).hexdigest()
            out[table.name] = (len(rows), digest)
    return out


def audit_rows_after(last_id: int) -> list[AuditLog]:
    with Session(get_engine()) as s:
        return list(s.exec(select(AuditLog).where(AuditLog.id > last_id).order_by(AuditLog.id)).all())


def last_audit_id() -> int:
    with Session(get_engine()) as s:
        return max([0, *s.exec(select(AuditLog.id)).all()])


# --- the crafted client ------------------------------------------------------------------------

@dataclass
class Outcome:
    frontend_events: list[Any] = field(default_factory=list)  # events the server told the browser to run
    deltas: list[dict] = field(default_factory=list)
    exceptions: list[BaseException] = field(default_factory=list)

    def texts(self) -> str:
        return "\n".join(f"{e.name} {v}" for e in self.frontend_events for v in e.payload.values())

    def redirects(self) -> list[str]:
        return [e.payload.get("path") for e in self.frontend_events if e.name == "_redirect"]


class CraftedClient:
    """A scripted browser tab talking to the app's real EventNamespace."""

    def __init__(self, recorder: dict, ip: str = "203.0.113.7"):
        self.ns = RX_APP.event_namespace
        self.token = str(uuid.uuid4())
        self.sid = "crafted-" + uuid.uuid4().hex
        self.ip = ip
        self._recorder = recorder

    def _outcome(self) -> Outcome:
        return self._recorder.setdefault(self.sid, Outcome())

    def take(self) -> Outcome:
        out = self._recorder.pop(self.sid, None) or Outcome()
        out.exceptions = self._recorder.pop("__exceptions__", [])
        return out

    async def connect(self, cookie: str, path: str = LOGIN_ROUTE, user_agent: str = "crafted/1.0",
                      forwarded_for: str = "1.2.3.4") -> Outcome:
        environ = {
            "QUERY_STRING": f"token={self.token}",
            "asgi.scope": {
                "headers": [(b"user-agent", user_agent.encode()), (b"x-forwarded-for", forwarded_for.encode())],
                "client": (self.ip, 40000),
            },
        }
        boot = {"name": event_name(State, "hydrate_and_load"),
                "payload": {"vars": {f"{AppState.get_full_name()}.session_secret": cookie}},
                "router_data": {"pathname": path, "query": {}, "asPath": path}}
        await self.ns.on_connect(self.sid, environ, auth={"event": boot})
        await settle()
        return self.take()

    async def send(self, name: str, payload: dict, path: str = LOGIN_ROUTE) -> Outcome:
        await self.ns.on_event(self.sid, {"name": name, "payload": payload, "token": "ignored-by-reflex",
                                          "router_data": {"pathname": path, "query": {}, "asPath": path}})
        await settle()
        return self.take()

    async def substate(self, cls: type[rx.State]) -> rx.State:
        root = await RX_APP.state_manager.get_state(BaseStateToken(ident=self.token, cls=State))
        return root.get_substate(cls.get_full_name().split("."))

    async def vars_snapshot(self) -> dict[str, Any]:
        """Every base var of every state in the tree (what a delta could carry to the browser)."""
        root = await RX_APP.state_manager.get_state(BaseStateToken(ident=self.token, cls=State))
        out = {}
        for cls in APP_STATES:
            sub = root.get_substate(cls.get_full_name().split("."))
            for name in cls.base_vars:
                out[f"{cls.__name__}.{name}"] = copy.deepcopy(getattr(sub, name))
        return out

    async def close(self) -> None:
        task = self.ns.on_disconnect(self.sid)
        if task is not None:
            await task


async def settle(timeout: float = 15.0) -> None:
    """Wait until the processor has run every queued event and every event those chained."""
    proc = RX_APP.event_processor
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    quiet = 0
    while quiet < 3:
        await asyncio.sleep(0.002)
        queue = proc._queue
        busy = (queue is not None and queue._unfinished_tasks) or proc._tasks or proc._token_queues
        quiet = 0 if busy else quiet + 1
        if loop.time() > deadline:
            raise TimeoutError("Reflex events did not finish")


@pytest.fixture()
def reflex_backend(database_url, redis_client, monkeypatch):
    """Run a coroutine against the app's real event processing (see the module docstring)."""
    recorder: dict = {}

    async def fake_emit(event, data=None, to=None, **kwargs):
        if event == "event" and to is not None:
            out = recorder.setdefault(to, Outcome())
            out.frontend_events.extend(data.events)
            if data.delta:
                out.deltas.append(data.delta)

    original_handler = RX_APP.backend_exception_handler

    def recording_exception_handler(exc: Exception):
        recorder.setdefault("__exceptions__", []).append(exc)
        return original_handler(exc)

    monkeypatch.setattr(RX_APP.event_namespace, "emit", fake_emit)
    monkeypatch.setattr(RX_APP, "backend_exception_handler", recording_exception_handler)
    monkeypatch.setattr(RX_APP, "_event_processor", None)

    def run(scenario):
        async def main():
            monkeypatch.setattr(RX_APP, "_state_manager", StateManagerMemory())
            with RX_APP.set_contexts():
                async with RX_APP._setup_event_processor():
                    try:
                        return await scenario(lambda **kw: CraftedClient(recorder, **kw))
                    finally:
                        await RX_APP.state_manager.close()

        return asyncio.run(main())

    return run


# --- data --------------------------------------------------------------------------------------

@pytest.fixture()
def world(session, make_user):
    """User 1 is the admin a crafted event would target; one row of every catalog kind exists."""
    victim = make_user("admin", email="first-admin@example.com")
    assert victim.id == 1
    channel = Channel(name="Sandbox", kind="sandbox", phone_number_id="100", access_token="secret-token",
                      app_secret="secret-app", status="connected")
    session.add(channel)
    session.flush()
    template = Template(channel_id=channel.id, name="spring_sale", language="en_US", status="APPROVED")
    contact = Contact(first_name="Ada", last_name="Lovelace", country="GB", city="London")
    session.add_all([template, contact])
    session.flush()
    session.add(ContactIdentity(contact_id=contact.id, channel_type="whatsapp", address="+447700900123"))
    contact_list = ContactList(name="VIP", created_by_id=victim.id)
    session.add(contact_list)
    session.flush()
    session.add(ListMembership(list_id=contact_list.id, contact_id=contact.id))
    session.add(Segment(name="British", rules=[{"field": "country", "op": "equals", "value": "GB"}]))
    session.add(Campaign(name="Spring sale", status="draft", channel_id=channel.id, template_id=template.id,
                         created_by_id=victim.id))
    session.commit()
    return {"victim": victim, "session": session, "make_user": make_user}


def cookie_for(world, caller: str, redis_client) -> tuple[str, User | None]:
    if caller == ANONYMOUS:
        return "", None
    if caller == FORGED:
        return secrets.token_urlsafe(32), None
    user = world["make_user"](caller)
    result = auth.login(session=world["session"], redis_client=redis_client, email=user.email,
                        password="correct horse battery")
    return result.session_secret, user


def _users_in_db() -> dict[str, tuple[str, bool]]:
    with Session(get_engine()) as s:
        return {u.email: (u.role, u.is_active) for u in s.exec(select(User)).all()}


# --- 1. every handler is declared --------------------------------------------------------------

def test_every_handler_is_guarded_or_declared_public():
    undeclared = []
    both = []
    for cls, name, fn in _handlers():
        has_cap, has_public = bool(_capability(fn)), bool(getattr(fn, PUBLIC_ATTR, None))
        if not (has_cap or has_public):
            undeclared.append(f"{cls.__name__}.{name}")
        if has_cap and has_public:
            both.append(f"{cls.__name__}.{name}")
    assert not undeclared, (
        "These State event handlers can be called by any browser and carry neither @requires(capability) "
        f"nor @public_handler(reason) (state/guard.py): {undeclared}")
    assert not both, f"Handlers must be either guarded or public, not both: {both}"


def test_every_capability_is_a_known_one():
    for cls, name, cap in GUARDED:
        assert cap in perm.ALL_CAPABILITIES, f"{cls.__name__}.{name} requires unknown capability {cap!r}"


def test_every_user_defined_state_is_an_app_state():
    """A State outside the AppState tree would have no `_authorize` and escape this test."""
    strays = [cls.get_full_name() for cls in _state_classes(State)
              if not cls.__module__.startswith("reflex") and not issubclass(cls, AppState)]
    assert not strays, f"user-defined State classes must derive from state.base.AppState: {strays}"


def test_user_administration_needs_users_manage():
    """Pin the admin page: a handler there declared with a weaker capability must not slip through."""
    weaker = [name for cls, name, cap in GUARDED if cls is UsersState and cap != perm.USERS_MANAGE]
    assert not weaker, weaker
    assert not [name for cls, name in PUBLIC if cls is UsersState]


def test_reflex_registry_matches_the_enumeration():
    """Reflex routes an event by its registry, so that is what a crafted event can reach."""
    registered = set(RegistrationContext.get().event_handlers)
    ours = {event_name(cls, name) for cls in APP_STATES for name in cls.event_handlers}
    under_app_state = {n for n in registered if n.startswith(AppState.get_full_name() + ".")}
    assert under_app_state == ours
    outside = {n for n in registered if n not in ours}
    assert all(n.split(".")[-2].startswith("reflex___") for n in outside), sorted(outside)
    assert {n.rpartition(".")[2] for n in outside} == REFLEX_INTERNAL_HANDLERS


def test_reflex_added_handlers_are_exactly_the_whitelist():
    from reflex_base.config import get_config

    assert get_config().state_auto_setters is not True, "auto setters would make every var client-settable"
    assert set(State.event_handlers) == REFLEX_ROOT_HANDLERS
    for cls in APP_STATES:
        own = {name for name, h in cls.event_handlers.items() if h.fn.__module__ == cls.__module__}
        added = set(cls.event_handlers) - own
        assert added == REFLEX_ADDED_HANDLERS, (cls.__name__, added)


def test_enumeration_found_the_known_handlers():
    names = {f"{cls.__name__}.{name}" for cls, name, _ in GUARDED}
    assert {"UsersState.create_user", "UsersState.change_role", "UsersState.set_active", "UsersState.load",
            "ContactsState.load", "CampaignsState.load", "ChannelsState.load"} <= names
    assert {"AppState.check_session", "AppState.logout", "LoginState.submit"} <= {
        f"{cls.__name__}.{name}" for cls, name in PUBLIC}
    assert len(REFUSED_CASES) >= 30 and len(ALLOWED_CASES) >= 30


# --- 2. refused when the role lacks the capability ---------------------------------------------

@pytest.mark.parametrize(("cls", "handler", "capability", "caller"), REFUSED_CASES)
def test_crafted_event_is_refused(world, redis_client, reflex_backend, cls, handler, capability, caller):
    cookie, actor = cookie_for(world, caller, redis_client)
    payload = crafted_payload(cls.event_handlers[handler].fn)
    users_before = _users_in_db()

    async def scenario(new_client):
        client = new_client()
        await client.connect(cookie)
        before_db, before_vars, last_id = db_fingerprint(), await client.vars_snapshot(), last_audit_id()
        outcome = await client.send(event_name(cls, handler), payload, path=_page_for(cls))
        after_vars = await client.vars_snapshot()
        await client.close()
        return before_db, before_vars, last_id, outcome, after_vars

    before_db, before_vars, last_id, outcome, after_vars = reflex_backend(scenario)
    assert_refused(cls, handler, capability, caller, actor, last_id, outcome, before_db, before_vars, after_vars)
    assert _users_in_db() == users_before


def assert_refused(cls, handler, capability, caller, actor, last_id, outcome, before_db, before_vars, after_vars):
    """What a refused crafted event must look like (also used by tests/hardening/test_attacks.py)."""
    assert not outcome.exceptions, f"the handler raised instead of refusing: {outcome.exceptions!r}"
    # Refused, audit-logged with the handler's name and the caller.
    new_audit = audit_rows_after(last_id)
    assert [(a.action, a.outcome, a.target_type, a.target_id) for a in new_audit] == [
        ("permission.refused", "refused", "handler", f"{cls.__name__}.{handler}")]
    entry = new_audit[0]
    assert entry.actor_id == (actor.id if actor else None)
    assert entry.detail == {"capability": capability}
    assert entry.ip == "203.0.113.7"  # the socket's address, not the X-Forwarded-For the client sent
    # The browser is told so.
    if caller == ANONYMOUS:  # never signed in: sent to the login page without an alarm
        assert outcome.redirects() == [LOGIN_ROUTE]
        assert "toast" not in outcome.texts()
    elif actor is None:  # a cookie that is no (longer a) session
        assert "Your session has ended" in outcome.texts()
        assert outcome.redirects() == [LOGIN_ROUTE]
    else:
        assert "You don't have permission to do that." in outcome.texts()
        assert outcome.redirects() == []
    # Nothing else changed: no table, and no var of the state tree (so no data was sent either).
    assert db_fingerprint() == before_db
    assert after_vars == before_vars
    assert all(not value for key, value in after_vars.items() if key.endswith(".rows") or key.endswith(".loaded"))
    assert not any("Ada" in repr(d) or "first-admin@" in repr(d) or "Sandbox" in repr(d) for d in outcome.deltas)


# --- 3. allowed when the role has it (the refusal assertions can fail) -------------------------

def _expected_effect(cls, handler) -> Any:
    """A check that the handler really ran, where it has a visible effect."""
    def loaded(sub, users):
        assert sub.loaded and sub.rows, "load should have filled the table"

    effects = {
        "load": loaded,
        "create_user": lambda sub, users: users.get("x@y.z") == ("admin", True) or pytest.fail(str(users)),
        "change_role": lambda sub, users: users["first-admin@example.com"] == ("basic", True) or pytest.fail(
            str(users)),
        "set_active": lambda sub, users: users["first-admin@example.com"] == ("admin", False) or pytest.fail(
            str(users)),
        "open_create": lambda sub, users: sub.dialog_open or pytest.fail("dialog not opened"),
        "set_search": lambda sub, users: sub.search == "draft" or pytest.fail(sub.search),
        "set_status_filter": lambda sub, users: sub.status_filter == "draft" or pytest.fail(sub.status_filter),
        "next_page": lambda sub, users: sub.page == 2 or pytest.fail(str(sub.page)),
    }
    return effects.get(handler)


@pytest.mark.parametrize(("cls", "handler", "capability", "caller"), ALLOWED_CASES)
def test_crafted_event_with_the_capability_is_allowed(world, redis_client, reflex_backend, cls, handler, capability,
                                                      caller):
    cookie, actor = cookie_for(world, caller, redis_client)
    payload = crafted_payload(cls.event_handlers[handler].fn)

    async def scenario(new_client):
        client = new_client()
        await client.connect(cookie)
        last_id = last_audit_id()
        outcome = await client.send(event_name(cls, handler), payload, path=_page_for(cls))
        sub = await client.substate(cls)
        await client.close()
        return last_id, outcome, sub

    last_id, outcome, sub = reflex_backend(scenario)
    assert_allowed(cls, handler, last_id, outcome, sub)


def assert_allowed(cls, handler, last_id, outcome, sub):
    """What an allowed crafted event must look like (also used by tests/hardening/test_attacks.py)."""
    assert not outcome.exceptions, outcome.exceptions
    assert [a for a in audit_rows_after(last_id) if a.action == "permission.refused"] == []
    assert "don't have permission" not in outcome.texts() and "session has ended" not in outcome.texts()
    assert outcome.redirects() == []
    effect = _expected_effect(cls, handler)
    if effect is not None:
        effect(sub, _users_in_db())


# --- public handlers: harmless to a stranger ---------------------------------------------------

@pytest.mark.parametrize(("cls", "handler"), [pytest.param(c, n, id=f"{c.__name__}.{n}") for c, n in PUBLIC])
@pytest.mark.parametrize("caller", [ANONYMOUS, FORGED])
def test_public_handlers_change_no_data_for_a_stranger(world, redis_client, reflex_backend, cls, handler, caller):
    cookie, _ = cookie_for(world, caller, redis_client)
    payload = crafted_payload(cls.event_handlers[handler].fn)

    async def scenario(new_client):
        client = new_client()
        await client.connect(cookie)
        before = db_fingerprint()
        outcome = await client.send(event_name(cls, handler), payload)
        vars_after = await client.vars_snapshot()
        await client.close()
        return before, outcome, vars_after

    before, outcome, vars_after = reflex_backend(scenario)
    assert not outcome.exceptions, outcome.exceptions
    assert db_fingerprint() == before
    assert not vars_after["AppState.signed_in"] and vars_after["AppState.user_role"] == ""
    assert all(not value for key, value in vars_after.items() if key.endswith(".rows"))


# --- crafted setters ---------------------------------------------------------------------------

def test_crafted_setters_cannot_raise_a_role(world, redis_client, reflex_backend):
    """No `set_user_role` handler exists; `setvar` and `update_vars_internal` cannot set it either;
    and even a state var forced to "admin" does not change what the server authorises."""
    cookie, basic = cookie_for(world, perm.BASIC, redis_client)
    app_state = AppState.get_full_name()

    async def scenario(new_client):
        client = new_client()
        await client.connect(cookie)
        before = db_fingerprint()
        results = {}
        for name, payload in [
            (f"{app_state}.set_user_role", {"value": "admin"}),
            (f"{UsersState.get_full_name()}.set_user_role", {"value": "admin"}),
            (f"{app_state}.set_signed_in", {"value": True}),
            (f"{app_state}.setvar", {"var_name": "user_role", "value": "admin"}),
            (f"{UsersState.get_full_name()}.setvar", {"var_name": "session_secret", "value": "x"}),
            (event_name(UpdateVarsInternalState, "update_vars_internal"),
             {"vars": {f"{app_state}.user_role": "admin", f"{app_state}.signed_in": True}}),
        ]:
            results[name] = await client.send(name, payload)
        sub = await client.substate(UsersState)
        role_after, secret_after = sub.user_role, sub.session_secret
        # Worst case: the display var says admin (as if a setter had worked). The server ignores it.
        sub.user_role, sub.signed_in = "admin", True
        last_id = last_audit_id()
        load = await client.send(event_name(UsersState, "load"), {}, path="/users")
        rows_after = (await client.substate(UsersState)).rows
        await client.close()
        return before, results, role_after, secret_after, last_id, load, rows_after

    before, results, role_after, secret_after, last_id, load, rows_after = reflex_backend(scenario)
    assert role_after == "" and secret_after == cookie
    for name, outcome in results.items():
        assert not any(e.name == "_redirect" for e in outcome.frontend_events), name
    # `setvar` found no `set_user_role` / `set_session_secret`: Reflex raised, nothing was set.
    for name in (f"{app_state}.setvar", f"{UsersState.get_full_name()}.setvar"):
        raised = results[name].exceptions
        assert raised and all(isinstance(e, AttributeError) for e in raised), (name, raised)
    assert db_fingerprint() == before
    refused = [(a.action, a.target_id, a.actor_id) for a in audit_rows_after(last_id)]
    assert refused == [("permission.refused", "UsersState.load", basic.id)]
    assert "You don't have permission to do that." in load.texts()
    assert rows_after == []


def test_setvar_cannot_bypass_a_guard(world, redis_client, reflex_backend):
    """`setvar("search", ...)` reaches CampaignsState.set_search, which is guarded itself."""
    from state.campaigns import CampaignsState

    async def scenario(new_client):
        client = new_client()
        await client.connect("")
        last_id = last_audit_id()
        outcome = await client.send(event_name(CampaignsState, "setvar"), {"var_name": "search", "value": "Spring"})
        sub = await client.substate(CampaignsState)
        await client.close()
        return last_id, outcome, sub.search, sub.rows

    last_id, outcome, search, rows = reflex_backend(scenario)
    assert [(a.action, a.target_id) for a in audit_rows_after(last_id)] == [
        ("permission.refused", "CampaignsState.set_search")]
    # (Reflex's setvar drops the handler's return value, so the refusal's redirect never reaches the
    # browser; what matters is that the guard ran and nothing was set.)
    assert not outcome.exceptions, outcome.exceptions
    assert search == "" and rows == []


# --- the login form through the same path ------------------------------------------------------

def test_login_event_issues_a_new_server_generated_secret(world, redis_client, reflex_backend):
    """Session fixation: whatever cookie the browser arrives with, login replaces it with a new secret."""
    user = world["make_user"](perm.BASIC)
    chosen = "attacker-chosen-" + secrets.token_urlsafe(16)
    old = auth.login(session=world["session"], redis_client=redis_client, email=user.email,
                     password="correct horse battery").session_secret

    async def scenario(new_client):
        client = new_client()
        results = []
        for cookie in (chosen, old):
            await client.connect(cookie)
            outcome = await client.send(event_name(LoginState, "submit"),
                                        {"form": {"email": user.email, "password": "correct horse battery"}})
            results.append((outcome, (await client.substate(LoginState)).session_secret))
            await client.close()
        return results

    results = reflex_backend(scenario)
    secrets_ = [secret for _, secret in results]
    for outcome, secret in results:
        assert outcome.redirects() == ["/campaigns"]
        assert secret and secret not in (chosen, old, user.email, "correct horse battery")
    assert secrets_[0] != secrets_[1]
    with Session(get_engine()) as s:
        assert auth.resolve_session(session=s, secret=chosen) is None
        assert auth.resolve_session(session=s, secret=old) is None  # the session the browser had was ended
        assert all(auth.resolve_session(session=s, secret=x).id == user.id for x in secrets_)
