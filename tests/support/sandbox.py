"""The WhatsApp Sandbox as a real process, and readers of what it accepted."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import httpx

from app.settings import PROJECT_ROOT
from tests.support.wait import wait_until

TOKEN = "send-test-token-0123456789"
SECRET = "send-test-app-secret"
PNID, WABA = "100000000000001", "200000000000001"

# A second account (its own ids and secrets) for the template sync and channel tests.
ACCOUNT_TOKEN = "tpl-it-access-token-0123456789"
ACCOUNT_SECRET = "tpl-it-app-secret-abcdef"
ACCOUNT_PNID, ACCOUNT_WABA = "100000000000777", "200000000000777"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sandbox:
    def __init__(self, url: str, log_file: Path, proc: subprocess.Popen, token: str = TOKEN):
        self.url, self.log_file, self.proc, self.token = url, log_file, proc, token

    def admin(self, method: str, path: str, **kwargs) -> dict:
        r = httpx.request(
            method, self.url + path, headers={"Authorization": f"Bearer {self.token}"}, timeout=10, **kwargs
        )
        assert r.status_code == 200, r.text
        return r.json()

    def log(self) -> dict:
        return self.admin("GET", "/_sandbox/log")

    def configure(self, **changes) -> dict:
        return self.admin("POST", "/_sandbox/config", json=changes)

    def entries(self) -> list[dict]:
        if not self.log_file.exists():
            return []
        return [json.loads(line) for line in self.log_file.read_text().splitlines() if line.strip()]


def http_ok(url: str, timeout: float = 1) -> bool:
    """True when GET `url` answers 200 (False while nothing listens yet)."""
    try:
        return httpx.get(url, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def run_sandbox(
    tmp: Path,
    *,
    mps: float = 1000,
    latency_ms: float = 0,
    extra: tuple[str, ...] = (),
    token: str = TOKEN,
    secret: str = SECRET,
    port: int | None = None,
    database_url: str | None = None,
    timeout: float = 30,
):
    """The Sandbox as a process on `port` (default: a free one); yields a `Sandbox` once /_sandbox/health
    answers, and stops it (waited for) on exit. Its output goes to tmp/sandbox.out and tmp/sandbox.err.

    With `database_url` it is `hubcast sandbox`, which takes the stored Sandbox channel's ids, secrets, rate
    and templates, so only --port, --seed, --log-file and `extra` are given (mps, latency_ms, token and
    secret do not apply; `token` is still the one `Sandbox.admin` sends)."""
    port = port or free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    log_file = tmp / "sends.jsonl"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if database_url is None:
        args = [
            sys.executable,
            "-m",
            "app.whatsapp.sandbox",
            "--port",
            str(port),
            "--app-secret",
            secret,
            "--access-token",
            token,
            "--mps",
            str(mps),
            "--latency-ms",
            str(latency_ms),
            "--seed",
            "1",
            "--log-file",
            str(log_file),
            *extra,
        ]
    else:
        args = [
            sys.executable,
            "-m",
            "app.cli",
            "sandbox",
            "--port",
            str(port),
            "--seed",
            "1",
            "--log-file",
            str(log_file),
            *extra,
        ]
        env.update(DATABASE_URL=database_url, HUBCAST_DATA_DIR=str(tmp / "data"))
    out, err = open(tmp / "sandbox.out", "wb"), open(tmp / "sandbox.err", "wb")
    proc = subprocess.Popen(args, cwd=PROJECT_ROOT, stdout=out, stderr=err, env=env)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        # An exited Sandbox (bad argument, port taken) fails at once, with what it said.
        assert proc.poll() is None, f"sandbox exited with {proc.returncode}: " + (tmp / "sandbox.err").read_text()
        return http_ok(f"{url}/_sandbox/health")

    try:
        wait_until(up, timeout, message="sandbox started (see sandbox.err)")
        yield Sandbox(url, log_file, proc, token)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        out.close()
        err.close()


def run_account_sandbox(workdir: Path, *, templates_file: Path | None = None):
    """The Sandbox as the second account (ACCOUNT_* ids and secrets), optionally serving `templates_file`."""
    extra = ("--phone-number-id", ACCOUNT_PNID, "--waba-id", ACCOUNT_WABA)
    if templates_file is not None:
        extra += ("--templates-file", str(templates_file))
    return run_sandbox(workdir, token=ACCOUNT_TOKEN, secret=ACCOUNT_SECRET, extra=extra)


def max_per_window(entries: list[dict], window_s: float = 1.0) -> int:
    """The most accepted sends in any `window_s`-long window (sliding, from the Sandbox's timestamps)."""
    times = sorted(datetime.fromisoformat(e["at"]).timestamp() for e in entries)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window_s:
            j += 1
        best = max(best, i - j + 1)
    return best
