"""The app's HTTP routes (webhooks, /healthz…) served in their own process, as `hubcast web` serves them.

Shared by the benchmarks that need a real webhook receiver: bench/webhooks.py (a loader posts statuses)
and bench/dispatch.py --with-load (the Sandbox posts the statuses of the messages being sent)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def bench_redis_url(tmp: Path) -> tuple[str, subprocess.Popen | None]:
    """BENCH_REDIS_URL (default the local server's db 7) when it answers, else an embedded redis-server
    (returned so the caller stops it)."""
    import redis

    url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
        return url, None
    except redis.RedisError:
        from app.redis_conn import start_embedded_redis

        proc, url = start_embedded_redis(tmp / "redis")
        return url, proc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def http_api_server(
    database_url: str, workdir: Path, extra_env: dict[str, str] | None = None, *, dedicated_applier: bool = False
) -> Iterator[str]:
    """Yields the webhook URL once the server answers (a 403 to an unverified subscribe); stops it on exit.
    `dedicated_applier`: also run `hubcast applier` (statuses applied in a process of their own, the web
    process standing aside) — the deployment `--applier process` of the benchmarks measures."""
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "HUBCAST_DATA_DIR": str(workdir),
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    log_path = workdir / "http-api.log"
    log = open(log_path, "wb")
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from app.whatsapp.sandbox.server import serve; "
            "from app.http_api import build_http_api; "
            "serve(build_http_api(), '127.0.0.1', int(sys.argv[1]))",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    applier, applier_log = None, None
    if dedicated_applier:
        applier_log = open(workdir / "applier.log", "wb")
        applier = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "applier"],
            cwd=ROOT,
            env=env,
            stdout=applier_log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/webhooks/whatsapp"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "?hub.mode=subscribe", timeout=1)
            except urllib.error.HTTPError as exc:
                if exc.code == 403:  # answered: the verify token is wrong, as meant
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the HTTP API did not start: " + log_path.read_text(errors="replace")[-2000:])
            time.sleep(0.1)
        yield url
    finally:
        for proc in (server, applier):
            if proc is None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()
        if applier_log is not None:
            applier_log.close()
