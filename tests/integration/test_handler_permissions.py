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

The crafted client is tests/support/reflex_client.py (how the event travels is described there); the
enumeration, the crafted arguments, the refusal/allowance checks and the sweep are
tests/support/handler_matrix.py. The sweep (2 and 3, plus every public handler sent by strangers) runs once
per pytest run: this module asserts it, tests/hardening/test_attacks_events.py records the same result in
the hardening report.
"""

from __future__ import annotations

import pytest
from reflex.state import State
from reflex_base.registry import RegistrationContext

from app.domain import permissions as perm
from state.base import AppState
from state.guard import PUBLIC_ATTR
from state.users import UsersState
from tests.support.handler_matrix import (
    ALLOWED_CASES,
    GUARDED,
    PUBLIC,
    REFLEX_ADDED_HANDLERS,
    REFUSED_CASES,
    capability,
    crafted_setters_cannot_raise_a_role,
    handler_sweep,
    handlers,
    login_issues_a_new_server_generated_secret,
)
from tests.support.reflex_client import (
    APP_STATES,
    audit_rows_after,
    event_name,
    last_audit_id,
    state_classes,
)

# Every handler name Reflex 0.10.1 registers on its root State, and outside the AppState tree (its internal
# substates). A Reflex upgrade that adds one fails test_reflex_registry_matches_the_enumeration, so that
# someone looks at what the new handler lets a browser do.
REFLEX_ROOT_HANDLERS = frozenset({"hydrate", "hydrate_and_load", "set_is_hydrated", "setvar"})
REFLEX_INTERNAL_HANDLERS = REFLEX_ROOT_HANDLERS | {
    "update_vars_internal",
    "on_load_internal",
    "handle_frontend_exception",
}


# --- 1. every handler is declared --------------------------------------------------------------


def test_every_handler_is_guarded_or_declared_public():
    undeclared = []
    both = []
    for cls, name, fn in handlers():
        has_cap, has_public = bool(capability(fn)), bool(getattr(fn, PUBLIC_ATTR, None))
        if not (has_cap or has_public):
            undeclared.append(f"{cls.__name__}.{name}")
        if has_cap and has_public:
            both.append(f"{cls.__name__}.{name}")
    assert not undeclared, (
        "These State event handlers can be called by any browser and carry neither @requires(capability) "
        f"nor @public_handler(reason) (state/guard.py): {undeclared}"
    )
    assert not both, f"Handlers must be either guarded or public, not both: {both}"


def test_every_capability_is_a_known_one():
    for cls, name, cap in GUARDED:
        assert cap in perm.ALL_CAPABILITIES, f"{cls.__name__}.{name} requires unknown capability {cap!r}"


def test_every_user_defined_state_is_an_app_state():
    """A State outside the AppState tree would have no `_authorize` and escape this test."""
    strays = [
        cls.get_full_name()
        for cls in state_classes(State)
        if not cls.__module__.startswith("reflex") and not issubclass(cls, AppState)
    ]
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
    assert {
        "UsersState.create_user",
        "UsersState.change_role",
        "UsersState.set_active",
        "UsersState.load",
        "ContactsState.load",
        "CampaignsState.load",
        "ChannelsState.load",
    } <= names
    assert {"AppState.check_session", "AppState.logout", "LoginState.submit"} <= {
        f"{cls.__name__}.{name}" for cls, name in PUBLIC
    }
    assert len(REFUSED_CASES) >= 30 and len(ALLOWED_CASES) >= 30


# --- 2 and 3: every handler × every caller, once --------------------------------------------------


@pytest.mark.timeout(900)  # ~750 crafted events, each refused one followed by a checksum of every table
def test_every_handler_for_every_caller_as_crafted_events(world, redis_client, reflex_backend):
    """Refused without the capability (audit-logged, the browser told, nothing changed: no table, no var),
    allowed with it (and its effect seen where it has one), and public handlers harmless to strangers."""
    result = handler_sweep(world, redis_client, reflex_backend)
    assert not result.failures, f"{len(result.failures)} of {result.checked} cases failed:\n" + "\n".join(
        result.failures[:20]
    )
    assert result.counts == {"public": len(PUBLIC) * 2, "refused": len(REFUSED_CASES), "allowed": len(ALLOWED_CASES)}


# --- crafted setters ---------------------------------------------------------------------------


def test_crafted_setters_cannot_raise_a_role(world, redis_client, reflex_backend):
    """No `set_user_role` handler exists; `setvar` and `update_vars_internal` cannot set it either;
    and even a state var forced to "admin" does not change what the server authorises."""
    crafted_setters_cannot_raise_a_role(world, redis_client, reflex_backend)


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
        ("permission.refused", "CampaignsState.set_search")
    ]
    # (Reflex's setvar drops the handler's return value, so the refusal's redirect never reaches the
    # browser; what matters is that the guard ran and nothing was set.)
    assert not outcome.exceptions, outcome.exceptions
    assert search == "" and rows == []


# --- the login form through the same path ------------------------------------------------------


def test_login_event_issues_a_new_server_generated_secret(world, redis_client, reflex_backend):
    """Session fixation: whatever cookie the browser arrives with, login replaces it with a new secret."""
    login_issues_a_new_server_generated_secret(world, redis_client, reflex_backend)
