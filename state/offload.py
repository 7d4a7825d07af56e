"""Expensive reads (audience summaries, segment counts, contact pages) off the event loop, one at a time per
user, their answers kept a few seconds (issue 13 item 7).

Why: Reflex runs a synchronous handler on the event loop itself, so a query that scans the contacts table
stalled every tab of that server process meanwhile; a basic user looping such a handler (a search that matches
nothing, a segment with a custom-field rule) from a few tabs could make everyone else's clicks wait seconds.
Here the work runs on a small pool of its own threads (not asyncio's default pool, which other handlers use),
a user's next expensive read waits for their previous one (so one user holds at most one thread, however many
tabs they open), and the same read by the same user within CACHE_S is answered from memory.

Plumbing only: what is computed, and who may, is the services' business (the callable calls them).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from app.domain.permissions import Actor

T = TypeVar("T")

CACHE_S = 5.0
CACHE_ENTRIES = 2000  # per process; the oldest go first
THREADS = 4  # at most this many expensive reads at once per process, whatever the number of users

_POOL = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="hubcast-expensive")
# asyncio locks belong to one event loop: one table per loop (tests run each scenario in a new loop).
_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Any, asyncio.Lock]] = weakref.WeakKeyDictionary()
_CACHE: OrderedDict[tuple, tuple[float, Any]] = OrderedDict()


def _user_key(actor: Actor) -> Any:
    return getattr(actor, "id", None) or id(actor)


def _cached(key: tuple) -> tuple[bool, Any]:
    hit = _CACHE.get(key)
    if hit is None:
        return False, None
    if hit[0] < time.monotonic():
        _CACHE.pop(key, None)
        return False, None
    return True, hit[1]


def forget(actor: Actor) -> None:
    """Drop this user's cached answers (after they changed something the answers describe)."""
    user = _user_key(actor)
    for key in [k for k in _CACHE if k[0] == user]:
        _CACHE.pop(key, None)


async def run(actor: Actor, key: Hashable, fn: Callable[[], T], *, cache_s: float = CACHE_S) -> T:
    """`fn()` on the expensive-reads pool, after this user's previous expensive read finished; answered from
    the cache when the same `key` was computed for this user less than `cache_s` ago (0: never cached, for
    work that writes). Exceptions propagate and are not cached."""
    user = _user_key(actor)
    full_key = (user, key)
    if cache_s > 0:
        found, value = _cached(full_key)
        if found:
            return value
    loop = asyncio.get_running_loop()
    lock = _LOCKS.setdefault(loop, {}).setdefault(user, asyncio.Lock())
    async with lock:
        if cache_s > 0:  # a tab of the same user may have computed it while this one waited
            found, value = _cached(full_key)
            if found:
                return value
        context = contextvars.copy_context()  # the handler's context (its actor) in the worker thread
        value = await loop.run_in_executor(_POOL, functools.partial(context.run, fn))
    if cache_s > 0:
        _CACHE[full_key] = (time.monotonic() + cache_s, value)
        _CACHE.move_to_end(full_key)
        while len(_CACHE) > CACHE_ENTRIES:
            _CACHE.popitem(last=False)
    return value
