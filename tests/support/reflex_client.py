"""A crafted browser tab on the app's real Reflex event path, in-process.

How a crafted event travels: the test starts the app's own event processor through
`App._setup_event_processor()` (what the ASGI lifespan does), then opens a "socket" on the app's real
`EventNamespace`: `on_connect(sid, environ, auth={"event": <hydrate_and_load>})` with the cookie value in
the boot event's `vars` (exactly how the browser hands its cookies to the server), then `on_event(sid,
{"name": "<state full name>.<handler>", "payload": {...}, "router_data": {...}})`. From there Reflex does
everything itself: token lookup by socket id, router data and client IP from the connection, the
processor queue, the state lock, middleware, payload conversion by type hints, and the handler call.
Only two things are replaced (by the `reflex_backend` fixture of tests/support/reflex_events.py): the
namespace's `emit` (there is no browser socket; the test records what would be sent) and the state
manager (an in-memory one per test, instead of the disk manager the config picks, so tests do not share
states).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

import reflex as rx
from reflex.istate.manager.token import BaseStateToken
from reflex.state import State
from sqlmodel import Session, SQLModel, select

import app.app as app_module  # registers every page and State
from app.db import get_engine
from app.models import AuditLog, User
from app.services.accounts import auth
from state.base import LOGIN_ROUTE, SESSION_COOKIE, AppState
from tests.support.stores import PASSWORD

RX_APP = app_module.app
ANONYMOUS, FORGED = "anonymous", "forged-cookie"


def state_classes(root: type[rx.State]) -> list[type[rx.State]]:
    """`root` and every State class below it, sorted by full name."""
    found, todo = [], [root]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(sorted(cls.get_substates(), key=lambda c: c.get_full_name()))
    return sorted(found, key=lambda c: c.get_full_name())


APP_STATES = state_classes(AppState)


def event_name(cls: type[rx.State], handler: str) -> str:
    return f"{cls.get_full_name()}.{handler}"


def page_for(cls: type[rx.State]) -> str:
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


def users_in_db() -> dict[str, tuple[str, bool]]:
    with Session(get_engine()) as s:
        return {u.email: (u.role, u.is_active) for u in s.exec(select(User)).all()}


def cookie_for(world, caller: str, redis_client) -> tuple[str, User | None]:
    """The session cookie a `caller` (ANONYMOUS, FORGED or a role) arrives with, and its user."""
    if caller == ANONYMOUS:
        return "", None
    if caller == FORGED:
        return secrets.token_urlsafe(32), None
    user = world["make_user"](caller)
    result = auth.login(session=world["session"], redis_client=redis_client, email=user.email, password=PASSWORD)
    return result.session_secret, user


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

    async def connect(
        self,
        cookie: str | None,
        path: str = LOGIN_ROUTE,
        user_agent: str = "crafted/1.0",
        forwarded_for: str = "1.2.3.4",
        handshake_cookie: str | None = None,
        hydrate: bool = True,
    ) -> Outcome:
        """Like a browser: the session cookie goes both in the handshake's Cookie header and in the boot
        event's vars. `handshake_cookie` overrides the header's value ("" sends no cookie at all); `cookie`
        None leaves the session var out of the boot event; `hydrate=False` sends no boot event at all (a crafted
        client replaying a tab token keeps the server's state as the tab left it)."""
        sent_cookie = (cookie or "") if handshake_cookie is None else handshake_cookie
        headers = [(b"user-agent", user_agent.encode()), (b"x-forwarded-for", forwarded_for.encode())]
        if sent_cookie:
            headers.append((b"cookie", f"{SESSION_COOKIE}={sent_cookie}".encode()))
        environ = {
            "QUERY_STRING": f"token={self.token}",
            "asgi.scope": {"headers": headers, "client": (self.ip, 40000)},
        }
        boot_vars = {} if cookie is None else {f"{AppState.get_full_name()}.session_secret": cookie}
        boot = {
            "name": event_name(State, "hydrate_and_load"),
            "payload": {"vars": boot_vars},
            "router_data": {"pathname": path, "query": {}, "asPath": path},
        }
        await self.ns.on_connect(self.sid, environ, auth={"event": boot} if hydrate else None)
        await settle()
        return self.take()

    async def send(self, name: str, payload: dict, path: str = LOGIN_ROUTE) -> Outcome:
        await self.ns.on_event(
            self.sid,
            {
                "name": name,
                "payload": payload,
                "token": "ignored-by-reflex",
                "router_data": {"pathname": path, "query": {}, "asPath": path},
            },
        )
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


BACKGROUND_GRACE_S = 1.0


def _background_event_names() -> frozenset[str]:
    return frozenset(
        event_name(cls, name)
        for cls in APP_STATES
        for name, handler in cls.event_handlers.items()
        if handler.is_background
    )


BACKGROUND_EVENTS = _background_event_names()


async def settle(timeout: float = 15.0, background_grace: float = BACKGROUND_GRACE_S) -> None:
    """Wait until the processor has run every queued event and every event those chained.

    A background event (`@rx.event(background=True)`) may be a poller that runs as long as the tab is open
    (the system health banner's): it counts as busy only for its first `background_grace` seconds, long
    enough for its first update; foreground events are always waited for."""
    proc = RX_APP.event_processor
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    first_seen: dict[int, float] = {}
    quiet = 0
    while quiet < 3:
        await asyncio.sleep(0.002)  # one turn of the loop for the processor; counted, not a fixed wait
        now = loop.time()
        queue = proc._queue
        busy = bool((queue is not None and queue._unfinished_tasks) or proc._token_queues)
        for task in list(proc._tasks.values()):
            if task.done():
                continue
            parts = task.get_name().split("|")  # reflex_event|<event name>|<token>|<txid>
            foreground = len(parts) < 2 or parts[1] not in BACKGROUND_EVENTS
            if foreground or now - first_seen.setdefault(id(task), now) < background_grace:
                busy = True
        quiet = 0 if busy else quiet + 1
        if now > deadline:
            raise TimeoutError("Reflex events did not finish")
