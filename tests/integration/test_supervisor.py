"""`hubcast run`: everything starts, answers, works; a crashed child is restarted until it crashes too
often; Ctrl-C, SIGTERM or giving up leaves nothing behind.

The fast tests swap Reflex for a tiny HTTP server (app.supervisor.web_child is the seam), so the
supervision itself (Redis, worker, signals, a child dying, restarts) is checked in seconds. The kill
scenarios against the real app, mid-campaign, are in tests/hardening/test_faults_supervisor.py. The last test runs
the real thing: it builds the Reflex frontend (a minute or two the first time) in the project's
shared .web directory, hence the e2e mark: `make test-integration` skips it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import redis as redis_lib
from rq import Queue
from rq.job import JobStatus

from app.redis_conn import free_port
from app.settings import PROJECT_ROOT
from tests.support.wait import wait_until

START_TIMEOUT = 240
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

# `hubcast run` with Reflex replaced by a server answering 200 to every GET on $PORT.
_FAKE_SERVER = """
import http.server, os
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *args):
        pass
http.server.HTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
"""
_FAKE_WEB_RUN = f"""
import sys
import app.supervisor as supervisor
from app.cli import main
supervisor.web_child = lambda settings: supervisor.ChildSpec("web app", [sys.executable, "-c", {_FAKE_SERVER!r}],
                                                          key="web")
sys.exit(main(["run", "--no-demo"]))
"""


# --- helpers ---------------------------------------------------------------------------------


def _env(tmp_path: Path, port: int, redis_url: str | None = None, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "PORT": str(port),
        "HUBCAST_DATA_DIR": str(tmp_path / "data"),
        "HUBCAST_ENV": "test",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'data' / 'hubcast.db'}",
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("REDIS_URL", "HUBCAST_ADMIN_EMAIL", "HUBCAST_ADMIN_PASSWORD", "HUBCAST_PUBLIC_URL"):
        env.pop(name, None)
    if redis_url:
        env["REDIS_URL"] = redis_url
    env.update(extra)
    return env


def _start(argv: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    with log_path.open("w") as log:
        # Its own session, so a SIGINT to its group acts like a terminal's Ctrl-C.
        return subprocess.Popen(
            argv, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def _wait_for_text(proc: subprocess.Popen, log_path: Path, text: str, timeout: float) -> str:
    def seen() -> str | None:
        output = log_path.read_text()
        assert text in output or proc.poll() is None, f"hubcast run exited early:\n{output[-3000:]}"
        return output if text in output else None

    return wait_until(seen, timeout, interval=0.2, message=f"{text!r} in {log_path}")


def _status(url: str) -> int | None:
    try:
        with _opener.open(url, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _descendants(root: int) -> set[int]:
    """Every process below `root`, from /proc (no psutil needed)."""
    parents = {int(e.name): _parent(int(e.name)) for e in Path("/proc").iterdir() if e.name.isdigit()}
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""


def _kill_tree(proc: subprocess.Popen) -> None:
    """Cleanup when a test failed half-way: nothing may keep running."""
    if proc.poll() is None:
        for pid in _descendants(proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        proc.kill()
        proc.wait()


def _assert_all_gone(pids: set[int]) -> None:
    wait_until(
        lambda: not [pid for pid in pids if _alive(pid)],
        timeout=5,  # orphans: reaped by init
        message=f"every process of hubcast run gone: {sorted(pids)}",
    )
    left = {pid: _cmdline(pid) for pid in pids if _alive(pid)}
    assert not left, f"outlived hubcast run: {left}"


# --- fast: the supervision, with a stand-in web server ----------------------------------------


def _child(status_file: Path, key: str) -> dict:
    try:
        return json.loads(status_file.read_text())["children"].get(key, {})
    except (OSError, ValueError, KeyError):
        return {}


def test_a_crashed_child_is_restarted_until_it_crashes_too_often(tmp_path):
    """SIGKILL the worker: restarted after a back-off, with the cause on the console and a log of its own;
    the sixth crash within the window stops everything and says which child, how often, and where its log is."""
    env = _env(
        tmp_path,
        free_port(),
        HUBCAST_RESTART_BACKOFF_S="0.2",
        HUBCAST_RESTART_BACKOFF_MAX_S="0.4",
        HUBCAST_RESTART_WINDOW_S="120",
        HUBCAST_RESTART_MAX_CRASHES="5",
    )
    log_path = tmp_path / "run.log"
    status_file = tmp_path / "data" / "run" / "status.json"
    worker_log = tmp_path / "data" / "logs" / "worker.log"
    sup = _start([sys.executable, "-c", _FAKE_WEB_RUN], env, log_path)
    seen_states: set[str] = set()
    pids: set[int] = set()
    try:
        output = _wait_for_text(sup, log_path, "Hubcast is running", timeout=60)
        # No admin configured: one is generated and its password printed once, with the email.
        assert "admin@hubcast.local" in output and output.count("password:") == 1
        assert any("redis-server" in _cmdline(pid) for pid in _descendants(sup.pid))
        killed: set[int] = set()
        for crash in range(1, 7):

            def running_worker():
                child = _child(status_file, "worker")
                seen_states.add(child.get("state", ""))
                # The console line of a crash comes a moment before the status file is rewritten: until then
                # the file still names the killed worker as ok. Wait for the one started after it.
                return child if child.get("state") == "ok" and child.get("pid") not in killed else None

            worker = wait_until(running_worker, 30, message=f"a running worker before crash {crash}")
            assert _parent(worker["pid"]) == sup.pid and "app.cli worker" in _cmdline(worker["pid"])
            pids |= _descendants(sup.pid)
            os.kill(worker["pid"], signal.SIGKILL)
            killed.add(worker["pid"])
            if crash <= 5:
                _wait_for_text(
                    sup,
                    log_path,
                    f"restarting it in {0.2 if crash == 1 else 0.4:g} s (crash {crash} "
                    "within 2 minutes; 5 restarts allowed)",
                    timeout=30,
                )
        assert sup.wait(timeout=30) != 0
    finally:
        _kill_tree(sup)
    output = log_path.read_text()
    assert "the worker was killed by SIGKILL; restarting it in 0.2 s" in output
    assert {"restarting", "ok"} <= seen_states, seen_states  # what /healthz and the banner read
    last = output.strip().splitlines()[-1]
    assert last == (
        "hubcast: error: The worker crashed 6 times within 2 minutes (last: it was killed by SIGKILL); "
        f"gave up and stopped everything. Its log: {worker_log}"
    )
    # Its own log, appended across restarts; its output reached the console too, prefixed with its name.
    assert worker_log.read_text().count("hubcast: worker started") == 6
    assert " worker | " in output
    assert not status_file.exists()
    _assert_all_gone(pids)


def test_sigterm_stops_everything_but_an_external_redis(tmp_path, redis_client, redis_url):
    log_path = tmp_path / "run.log"
    sup = _start([sys.executable, "-c", _FAKE_WEB_RUN], _env(tmp_path, free_port(), redis_url), log_path)
    try:
        output = _wait_for_text(sup, log_path, "Hubcast is running", timeout=60)
        assert "embedded Redis" not in output
        job = Queue("default", connection=redis_client).enqueue("workers.jobs.ping")
        wait_until(lambda: job.get_status(refresh=True) == JobStatus.FINISHED, timeout=15, message="the ping job run")
        assert job.return_value() == "pong"  # the supervised worker uses REDIS_URL
        children = _descendants(sup.pid)
        sup.send_signal(signal.SIGTERM)  # to the supervisor alone, as `kill` or a service manager does
        assert sup.wait(timeout=30) == 0, log_path.read_text()[-3000:]
    finally:
        _kill_tree(sup)
    _assert_all_gone(children)
    assert redis_client.ping()  # not ours to stop


def test_a_busy_port_is_one_line_and_starts_nothing(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "app.cli", "run", "--no-demo"],
            cwd=PROJECT_ROOT,
            env=_env(tmp_path, port),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode != 0
    assert (
        proc.stderr.strip() == f"hubcast: error: Port {port} is already in use (Address already in use); "
        "stop what uses it, or choose another with PORT or --port."
    )
    assert not (tmp_path / "data").exists()  # refused before touching anything


# --- slow: the real Reflex app ----------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.timeout(START_TIMEOUT + 120)
def test_run_serves_the_app_and_ctrl_c_stops_every_child(tmp_path):
    port = free_port()
    log_path = tmp_path / "hubcast-run.log"
    env = _env(tmp_path, port, HUBCAST_ADMIN_EMAIL="owner@example.com")  # no REDIS_URL: the embedded one
    sup = _start([sys.executable, "-m", "app.cli", "run", "--no-demo"], env, log_path)
    try:

        def healthy() -> bool:
            assert sup.poll() is None, f"hubcast run exited early:\n{log_path.read_text()[-3000:]}"
            return _status(f"http://127.0.0.1:{port}/healthz") == 200

        wait_until(healthy, START_TIMEOUT, interval=1, message=f"/healthz answering 200 (log: {log_path})")
        assert _status(f"http://127.0.0.1:{port}/") == 200
        output = _wait_for_text(sup, log_path, "Hubcast is running", timeout=10)
        assert "owner@example.com" in output and "password:" in output  # the first admin, shown once

        # The supervised worker runs jobs from the embedded Redis.
        redis_url = re.search(r"embedded Redis started at (redis://\S+)", output).group(1)
        job = Queue("default", connection=redis_lib.Redis.from_url(redis_url)).enqueue("workers.jobs.ping")
        wait_until(lambda: job.get_status(refresh=True) == JobStatus.FINISHED, timeout=15, message="the ping job run")
        assert job.return_value() == "pong"

        children = _descendants(sup.pid)
        commands = " ".join(_cmdline(pid) for pid in children)
        assert "redis-server" in commands and "app.cli worker" in commands and "reflex run" in commands

        os.killpg(sup.pid, signal.SIGINT)  # the terminal's Ctrl-C: the supervisor and the embedded Redis
        assert sup.wait(timeout=60) == 0, log_path.read_text()[-3000:]
    finally:
        _kill_tree(sup)
    _assert_all_gone(children)
    assert _status(f"http://127.0.0.1:{port}/healthz") is None
