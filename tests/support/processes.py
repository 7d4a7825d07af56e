"""Processes the tests start and stop: `hubcast worker` subprocesses, in-process burst runs of the queues,
the app's plain HTTP routes as a real server, and a TCP relay that can cut a connection (a network outage)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

from app.settings import PROJECT_ROOT
from tests.support.factories import campaign_row
from tests.support.sandbox import free_port, http_ok
from tests.support.wait import wait_until

FINISHED = ("sent", "failed", "paused", "cancelled")


def run_burst(redis_url: str) -> None:
    """Run the queues dry in this process (RQ SimpleWorker, burst), keeping pytest's signal handlers."""
    from workers.worker import run_worker

    saved = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        run_worker(redis_url, burst=True, logging_level="WARNING")
    finally:
        signal.signal(signal.SIGINT, saved[0])
        signal.signal(signal.SIGTERM, saved[1])


def drive_until(redis_url: str, campaign_id: int, statuses=FINISHED, timeout: float = 60):
    """Burst workers (and the sweeper's finishing step) until the campaign reaches one of `statuses`."""
    from app.services.sending.sweeper import sweep

    def step():
        run_burst(redis_url)
        sweep()
        campaign = campaign_row(campaign_id)
        return campaign if campaign.status in statuses else None

    return wait_until(step, timeout, interval=0.2, message=f"campaign {campaign_id} reaching one of {statuses}")


def cli_process(tmp: Path, database_url: str, redis_url: str, name: str, args, env_extra: dict | None = None):
    """`hubcast <args>` in its own process group, logging to tmp/<name>.log."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "HUBCAST_DATA_DIR": str(tmp / "data"),
        "PYTHONUNBUFFERED": "1",
        **(env_extra or {}),
    }
    log = open(tmp / f"{name}.log", "wb")
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", *args],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def worker_process(tmp: Path, database_url: str, redis_url: str, name: str, env_extra: dict | None = None):
    """`hubcast worker` in its own process group (its RQ scheduler too), logging to tmp/<name>.log."""
    return cli_process(tmp, database_url, redis_url, name, ["worker"], env_extra)


def stop_process(proc: subprocess.Popen, sig=signal.SIGTERM, timeout: float = 15) -> None:
    """Send `sig` to the process group, wait `timeout`, then SIGKILL whatever is left of the group."""
    if proc.poll() is not None:
        try:  # the leader is gone; children (node, granian workers) may still be around in its group
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        return
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@contextmanager
def http_api_process(tmp: Path, database_url: str, redis_url: str):
    """The app's plain HTTP routes (webhooks, /healthz) served by a real process; yields its base URL."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "HUBCAST_DATA_DIR": str(tmp / "data"),
        "PYTHONUNBUFFERED": "1",
    }
    tmp.mkdir(parents=True, exist_ok=True)
    log = open(tmp / "http_api.log", "wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from app.whatsapp.sandbox.server import serve; "
            "from app.http_api import build_http_api; serve(build_http_api(), '127.0.0.1', int(sys.argv[1]))",
            str(port),
        ],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def up():
            assert proc.poll() is None, (tmp / "http_api.log").read_text(errors="replace")[-2000:]
            return http_ok(url + "/healthz")

        wait_until(up, timeout=30, interval=0.1, message="http api up")
        yield url
    finally:
        stop_process(proc)
        log.close()


class TcpProxy:
    """A TCP relay the test controls, between workers and a server (e.g. PostgreSQL): `cut()` drops every
    open connection and refuses new ones (a network outage), `restore()` lets connections through again."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._cut = False
        self._closed = False
        self.refused = 0
        threading.Thread(target=self._accept, name="tcp-proxy", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self._cut:
                    self.refused += 1
                    client.close()
                    continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                self._drop(s)

    def _drop(self, s: socket.socket) -> None:
        with self._lock:
            self._open.discard(s)
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            victims = list(self._open)
        for s in victims:
            self._drop(s)

    def restore(self) -> None:
        with self._lock:
            self._cut = False

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._listener.close()


# --- the process tree, from /proc (no psutil needed) -------------------------------------------------


def parent_pid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def descendants(root: int) -> set[int]:
    """Every process below `root`."""
    parents = {int(e.name): parent_pid(int(e.name)) for e in Path("/proc").iterdir() if e.name.isdigit()}
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    """Running (a zombie is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""
