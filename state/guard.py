"""Server-side authorisation for Reflex event handlers.

Every public method of a State class can be called by a crafted websocket message, so each one is
declared with exactly one of:
- `@requires(capability)`: the caller's session is resolved from the database on every call, the
  user re-read, the capability checked; refusals are audit-logged and change nothing;
- `@public_handler(reason)`: handlers that touch no data behind a login (the login form itself,
  typing into a local form field). A test enumerates every State handler and fails on any that is neither.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from app.domain.permissions import Actor

_current_actor: ContextVar[Actor | None] = ContextVar("hubcast_current_actor", default=None)

CAPABILITY_ATTR = "__hubcast_capability__"
PUBLIC_ATTR = "__hubcast_public__"


def current_actor() -> Actor:
    """The user authorised for the running handler (set by @requires)."""
    actor = _current_actor.get()
    if actor is None:  # pragma: no cover - programming error: handler not decorated
        raise RuntimeError("current_actor() used outside a @requires handler")
    return actor


async def _authorize_async(state: Any, capability: str, name: str):
    """`_authorize` for async handlers. A background task (@rx.event(background=True)) gets a
    StateProxy that refuses writes outside `async with self`, and a refusal writes (it clears the
    identity vars): so the check runs under the state lock there, the same check as everywhere else."""
    from reflex.istate.proxy import StateProxy

    if isinstance(state, StateProxy):
        async with state:  # inside, __wrapped__ is the locked, mutable state itself (its real class name)
            return state.__wrapped__._authorize(capability, name)
    return state._authorize(capability, name)


def requires(capability: str) -> Callable:
    def decorate(fn: Callable) -> Callable:
        name = fn.__name__

        if inspect.isasyncgenfunction(fn):

            @functools.wraps(fn)
            async def agen_wrapper(self, *args: Any, **kwargs: Any):
                denied, actor = await _authorize_async(self, capability, name)
                if denied is not None:
                    yield denied
                    return
                token = _current_actor.set(actor)
                try:
                    async for item in fn(self, *args, **kwargs):
                        yield item
                finally:
                    _current_actor.reset(token)

            wrapper: Callable = agen_wrapper
        elif inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(self, *args: Any, **kwargs: Any):
                denied, actor = await _authorize_async(self, capability, name)
                if denied is not None:
                    return denied
                token = _current_actor.set(actor)
                try:
                    return await fn(self, *args, **kwargs)
                finally:
                    _current_actor.reset(token)

            wrapper = async_wrapper
        elif inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def gen_wrapper(self, *args: Any, **kwargs: Any):
                denied, actor = self._authorize(capability, name)
                if denied is not None:
                    yield denied
                    return
                token = _current_actor.set(actor)
                try:
                    yield from fn(self, *args, **kwargs)
                finally:
                    _current_actor.reset(token)

            wrapper = gen_wrapper
        else:

            @functools.wraps(fn)
            def sync_wrapper(self, *args: Any, **kwargs: Any):
                denied, actor = self._authorize(capability, name)
                if denied is not None:
                    return denied
                token = _current_actor.set(actor)
                try:
                    return fn(self, *args, **kwargs)
                finally:
                    _current_actor.reset(token)

            wrapper = sync_wrapper
        setattr(wrapper, CAPABILITY_ATTR, capability)
        return wrapper

    return decorate


def public_handler(reason: str) -> Callable:
    """Mark a handler that needs no login; `reason` documents why that is safe."""

    def decorate(fn: Callable) -> Callable:
        setattr(fn, PUBLIC_ATTR, reason)
        return fn

    return decorate
