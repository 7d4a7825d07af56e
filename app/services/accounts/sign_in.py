"""Sign-in from the login form, off the event loop (issue 13 item 2a).

Argon2id costs tens of milliseconds of CPU per check on purpose; run on the Reflex event loop, a few
anonymous tabs posting the login form stalled every signed-in user's clicks. `sign_in()` runs the whole
login (the database, Redis and the hash) in a small thread pool of its own: argon2-cffi releases the GIL
while it hashes, so the loop keeps answering everyone else. The pool is bounded twice: HASH_THREADS
checks at once, and at most MAX_WAITING more queued; past that a login is refused at once with the
usual generic message instead of queueing without end. The rate limits in Redis (`login_throttle.admit`,
per address and overall) stop a flood before it reaches the pool at all.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from app.db import session_scope
from app.redis_conn import get_redis
from app.services.accounts import auth

HASH_THREADS = 2
MAX_WAITING = 8

_slots = threading.BoundedSemaphore(HASH_THREADS + MAX_WAITING)
_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=HASH_THREADS, thread_name_prefix="hubcast-login")
        return _executor


def _sign_in_blocking(
    *, email: str, password: str, ip: str, user_agent: str, device_token: str, previous_secret: str
) -> auth.LoginResult:
    try:
        with session_scope() as session:
            # End whatever session this browser had: a login always starts a fresh one.
            if previous_secret:
                auth.logout(session=session, secret=previous_secret)
            return auth.login(
                session=session,
                redis_client=get_redis(),
                email=email,
                password=password,
                ip=ip,
                user_agent=user_agent,
                device_token=device_token,
            )
    finally:
        _slots.release()


async def sign_in(
    *, email: str, password: str, ip: str = "", user_agent: str = "", device_token: str = "", previous_secret: str = ""
) -> auth.LoginResult:
    """`auth.login` in the bounded pool; LoginFailed (the generic message) when it is full."""
    if not _slots.acquire(blocking=False):
        raise auth.LoginFailed()
    try:
        future = _pool().submit(
            _sign_in_blocking,
            email=email,
            password=password,
            ip=ip,
            user_agent=user_agent,
            device_token=device_token,
            previous_secret=previous_secret,
        )
    except BaseException:
        _slots.release()
        raise
    return await asyncio.wrap_future(future)
