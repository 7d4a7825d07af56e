"""The production topology on one box: nginx round-robin over two `hubcast web`, `hubcast worker`s, the
Sandbox (one per channel), the system PostgreSQL and Redis. Used by tests/topology and bench/topology.py.

- PostgreSQL: a database of its own (`hubcast_topology`, dropped and created afresh) on the server at
  `HUBCAST_TOPOLOGY_PG` (default 127.0.0.1:5432, user postgres, trust auth, as CI has it).
- Redis: `HUBCAST_TOPOLOGY_REDIS` (default redis://127.0.0.1:6379/12, a database no other test uses), flushed.
- nginx: Debian's, run unprivileged from a temporary prefix, with deploy/nginx/hubcast-locations.conf
  (the very file operators install) and an upstream of the two web processes. The test's server block adds
  an `X-Hubcast-Upstream` header so the test can tell which backend a browser's websocket reached.
- The front end: built once by `hubcast build` into build/topology-web (rebuilt when the app's source
  changed), then served by each `hubcast web` (no Node at run time, as in production).
Every process runs in its own process group and logs to the run's folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
WEB_DIR = Path(os.environ.get("HUBCAST_TOPOLOGY_WEB_DIR", PROJECT_ROOT / "build" / "topology-web")).resolve()
PG_SERVER = os.environ.get("HUBCAST_TOPOLOGY_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
PG_DB = os.environ.get("HUBCAST_TOPOLOGY_DB", "hubcast_topology")  # a run of its own (benchmarks) takes another
REDIS_URL = os.environ.get("HUBCAST_TOPOLOGY_REDIS", "redis://127.0.0.1:6379/12")
# The test process seals channel secrets with its own key: the processes must open them with the same one.
SECRET_KEY = os.environ.get("HUBCAST_SECRET_KEY") or "topology-secret-key-that-is-long-enough-0123456789"
METRICS_TOKEN = "topology-metrics-token-0123456789"
ADMIN = ("topology-admin@example.com", "topology-admin-pass-0001")
BASIC = ("topology-basic@example.com", "topology-basic-pass-0002")
NGINX_CANDIDATES = ("/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx")
SOURCE_DIRS = ("app", "components", "state", "assets")


class Unavailable(Exception):
    """Something the topology needs is missing on this machine (the test skips with the reason)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_nginx() -> str:
    found = shutil.which("nginx") or next((p for p in NGINX_CANDIDATES if os.access(p, os.X_OK)), None)
    if not found:
        raise Unavailable("nginx is not installed (Debian: apt-get install nginx; .ci/run does it)")
    return found


def pg_admin_url() -> str:
    return f"{PG_SERVER}/postgres"


def database_url() -> str:
    return f"{PG_SERVER}/{PG_DB}"


def fresh_database() -> str:
    """Drop and create the topology database; Unavailable when PostgreSQL does not answer."""
    import psycopg

    plain = pg_admin_url().replace("postgresql+psycopg://", "postgresql://", 1)
    try:
        with psycopg.connect(plain, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{PG_DB}"')
    except psycopg.OperationalError as exc:
        raise Unavailable(f"PostgreSQL is not reachable at {PG_SERVER}: {str(exc).splitlines()[0]}") from exc
    return database_url()


def fresh_redis() -> str:
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
        client.flushdb()
        client.close()
    except redis.RedisError as exc:
        raise Unavailable(f"Redis is not reachable at {REDIS_URL}: {exc}") from exc
    return REDIS_URL


def http_status(url: str, timeout: float = 3) -> int:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return 0


def wait_for(condition, timeout: float, message: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} not met within {timeout:.0f}s")
        time.sleep(interval)  # polling processes we do not control


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --- the front end ------------------------------------------------------------------------------------


def _source_hash() -> str:
    digest = hashlib.sha256()
    files = [PROJECT_ROOT / "rxconfig.py", PROJECT_ROOT / "reflex.lock" / "package.json"]
    for name in SOURCE_DIRS:
        root = PROJECT_ROOT / name
        if root.exists():
            files += sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for path in files:
        if path.exists():
            digest.update(str(path.relative_to(PROJECT_ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def ensure_frontend(log_path: Path) -> float:
    """`hubcast build` into WEB_DIR unless the build there is of the current source; returns seconds spent."""
    WEB_DIR.mkdir(parents=True, exist_ok=True)
    marker = WEB_DIR / ".hubcast-source-hash"
    with open(WEB_DIR.parent / f".{WEB_DIR.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time (a second run waits, then reuses it)
        wanted = _source_hash()
        index = WEB_DIR / "build" / "client" / "index.html"
        if index.exists() and marker.exists() and marker.read_text() == wanted:
            return 0.0
        started = time.monotonic()
        env = {
            **os.environ,
            "REFLEX_WEB_WORKDIR": str(WEB_DIR),
            "REFLEX_TELEMETRY_ENABLED": "false",
            "HUBCAST_DATA_DIR": str(log_path.parent / "build-data"),
        }
        with open(log_path, "w") as log:
            code = subprocess.call(
                [sys.executable, "-m", "app.cli", "build"],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        if code != 0:
            raise AssertionError(f"`hubcast build` failed ({code}):\n{tail(log_path)}")
        marker.write_text(wanted)
        return time.monotonic() - started


# --- nginx ------------------------------------------------------------------------------------------


def nginx_conf(prefix: Path, port: int, upstreams: list[int]) -> str:
    servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=30s;" for p in upstreams)
    locations = PROJECT_ROOT / "deploy" / "nginx" / "hubcast-locations.conf"
    return f"""
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    types {{ text/html html; application/javascript js; text/css css; }}
    upstream hubcast_web {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        server_name localhost;
        # Test only: which backend answered (the websocket handshake included), read through the browser.
        add_header X-Hubcast-Upstream $upstream_addr always;
        include {locations};
    }}
}}
"""


# --- processes --------------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    proc: subprocess.Popen
    log: Path
    port: int | None = None

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        for s, wait_s in ((sig, timeout), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.proc.pid, s)
            except (ProcessLookupError, PermissionError):
                break
            try:
                self.proc.wait(timeout=wait_s)
                break
            except subprocess.TimeoutExpired:
                continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # whatever is left of its group (Granian's workers)

    def kill(self) -> None:
        """SIGKILL to the whole group at once: a machine dying, not a shutdown."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


@dataclass
class Topology:
    root: Path
    database_url: str
    redis_url: str
    nginx_port: int
    web_ports: list[int]
    env: dict[str, str]
    procs: list[Proc] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://localhost:{self.nginx_port}"

    def start(self, name: str, argv: list[str], port: int | None = None, env: dict | None = None) -> Proc:
        log = self.root / f"{name}.log"
        handle = open(log, "wb")
        proc = subprocess.Popen(
            argv,
            cwd=PROJECT_ROOT,
            env={**self.env, **(env or {})},
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        handle.close()
        entry = Proc(name, proc, log, port)
        self.procs.append(entry)
        return entry

    def web(self, index: int) -> Proc:
        port = self.web_ports[index]
        return self.start(
            f"web{index + 1}",
            [sys.executable, "-m", "app.cli", "web", "--host", "127.0.0.1", "--port", str(port)],
            port=port,
        )

    def worker(self, name: str) -> Proc:
        return self.start(name, [sys.executable, "-m", "app.cli", "worker"])

    def applier(self) -> Proc:
        return self.start("applier", [sys.executable, "-m", "app.cli", "applier"])

    def wait_web(self, entry: Proc, timeout: float = 120) -> None:
        def up():
            if not entry.alive():
                raise AssertionError(f"{entry.name} exited with {entry.proc.returncode}:\n{tail(entry.log)}")
            return (
                http_status(f"http://127.0.0.1:{entry.port}/healthz") == 200
                and http_status(f"http://127.0.0.1:{entry.port}/login/") == 200
            )

        wait_for(up, timeout, f"{entry.name} serving /healthz and /login/")

    def stop_all(self) -> None:
        for entry in reversed(self.procs):
            if entry.name.startswith("nginx") and entry.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(entry.proc.pid, signal.SIGQUIT)  # nginx: graceful
            entry.stop(timeout=10)


def prepare(root: Path) -> Topology:
    """Database (migrated), Redis, front end, environment. Raises Unavailable when the machine lacks a part."""
    find_nginx()
    db_url = fresh_database()
    redis_url = fresh_redis()
    root.mkdir(parents=True, exist_ok=True)
    nginx_port, web_ports = free_port(), [free_port(), free_port()]
    venv_bin = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
        "HUBCAST_ENV": "production",
        "HUBCAST_SECRET_KEY": SECRET_KEY,
        "HUBCAST_DATA_DIR": str(root / "data"),
        "HUBCAST_UPLOAD_DIR": str(root / "data" / "uploads"),
        "HUBCAST_PUBLIC_URL": f"http://localhost:{nginx_port}",
        "HUBCAST_METRICS_TOKEN": METRICS_TOKEN,
        "HUBCAST_LOG_FORMAT": "json",
        "HUBCAST_WEB_WORKERS": "1",
        "REFLEX_WEB_WORKDIR": str(WEB_DIR),
        "REFLEX_TELEMETRY_ENABLED": "false",
        "PYTHONUNBUFFERED": "1",
        "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),
        # Each campaign keeps `lanes` workers busy while it sends (a SimpleWorker runs one job at a time): with
        # the default 4 lanes, two campaigns need 8 workers to send at once. One lane sends 500 msg/s at 150 ms.
        "HUBCAST_SEND_LANES": os.environ.get("HUBCAST_SEND_LANES", "1"),
    }
    for name in ("HUBCAST_API_URL", "HUBCAST_EXTRA_ORIGINS", "PORT"):
        env.pop(name, None)
    return Topology(root, db_url, redis_url, nginx_port, web_ports, env)


def start_nginx(topo: Topology) -> Proc:
    prefix = topo.root / "nginx"
    (prefix / "tmp").mkdir(parents=True, exist_ok=True)
    # Started as root, nginx's workers run as `nobody`: they must reach the temp folders (request bodies).
    for folder in (topo.root, prefix):
        folder.chmod(0o755)
    (prefix / "tmp").chmod(0o777)
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_conf(prefix, topo.nginx_port, topo.web_ports))
    nginx = find_nginx()
    check = subprocess.run([nginx, "-t", "-p", str(prefix), "-c", str(conf)], capture_output=True, text=True)
    if check.returncode != 0:
        raise AssertionError(f"nginx -t refused the config:\n{check.stderr}")
    entry = topo.start("nginx", [nginx, "-p", str(prefix), "-c", str(conf)], port=topo.nginx_port)
    wait_for(
        lambda: http_status(f"http://127.0.0.1:{topo.nginx_port}/healthz") in (200, 502, 503, 504),
        30,
        "nginx listening",
    )
    return entry


def json_log_problems(paths: list[Path]) -> list[str]:
    """Lines of these logs that are not JSON objects (HUBCAST_LOG_FORMAT=json)."""
    bad = []
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                if not isinstance(json.loads(line), dict):
                    bad.append(f"{path.name}: {line[:160]}")
            except ValueError:
                bad.append(f"{path.name}: {line[:160]}")
    return bad


# --- the Sandboxes and the data -----------------------------------------------------------------------


class Sandbox:
    """One Sandbox process (one WhatsApp number with its own ids and secrets) and readers of what it accepted."""

    def __init__(self, entry: Proc, url: str, log_file: Path, pnid: str, waba: str, token: str, secret: str):
        self.entry, self.url, self.log_file = entry, url, log_file
        self.pnid, self.waba, self.token, self.secret = pnid, waba, token, secret
        self._client = None  # one HTTP client for every poll (see summary)

    def summary(self, per_recipient: bool = True) -> dict:
        import httpx

        # One client for every poll: a new one per call builds a TLS context each time (~20 ms of CPU, taken
        # from the processes being measured when the benchmark polls twice a second).
        if self._client is None:
            self._client = httpx.Client(headers={"Authorization": f"Bearer {self.token}"}, timeout=30)
        return self._client.get(
            f"{self.url}/_sandbox/log", params={"per_recipient": "1" if per_recipient else "0"}
        ).json()

    def total(self) -> int:
        try:
            return int(self.summary(per_recipient=False)["total"])
        except (ValueError, KeyError, OSError):  # a busy Sandbox: count its log instead
            with open(self.log_file, "rb") as fh:
                return sum(1 for _ in fh)

    def entries(self) -> list[dict]:
        if not self.log_file.exists():
            return []
        return [json.loads(line) for line in self.log_file.read_text().splitlines() if line.strip()]


def start_sandbox(topo: Topology, k: int, cap: int, latency_ms: int = 0) -> Sandbox:
    """Sandbox number k: accepts up to 3x `cap` (the app must do the shaping), posts signed status webhooks
    (sent, then delivered; none read) to nginx, logs every accepted send."""
    port = free_port()
    pnid, waba = f"10000000000010{k}", f"20000000000010{k}"
    token, secret = f"topology-token-{k}-0123456789", f"topology-secret-{k}-0123456789"
    log_file = topo.root / f"sandbox{k + 1}-sends.jsonl"
    log_file.unlink(missing_ok=True)
    entry = topo.start(
        f"sandbox{k + 1}",
        [
            sys.executable,
            "-m",
            "app.whatsapp.sandbox",
            "--port",
            str(port),
            "--app-secret",
            secret,
            "--access-token",
            token,
            "--phone-number-id",
            pnid,
            "--waba-id",
            waba,
            "--mps",
            str(cap * 3),
            "--latency-ms",
            str(latency_ms),
            "--seed",
            str(k + 1),
            "--log-file",
            str(log_file),
            "--read-ratio",
            "0",
            "--webhook-url",
            f"{topo.base_url}/webhooks/whatsapp",
            "--sent-delay",
            "0.2,0.6",
            "--delivered-delay",
            "0.5,1.5",
        ],
        port=port,
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if not entry.alive():
            raise AssertionError(f"sandbox {k + 1} exited:\n{tail(entry.log)}")
        return http_status(f"{url}/_sandbox/health") == 200

    wait_for(up, 60, f"sandbox {k + 1} up")
    return Sandbox(entry, url, log_file, pnid, waba, token, secret)


def seed(sandboxes: list[Sandbox], sizes: list[int], caps: list[int]) -> dict:
    """The two accounts, one channel per Sandbox (its cap), a list and a ready draft campaign per channel.
    Uses this process's database settings (DATABASE_URL set by the caller)."""
    from sqlmodel import Session

    from app.db import get_engine
    from app.models import Channel
    from app.services.accounts.users import create_user
    from tests.support.factories import MAPPING, make_campaign, make_list, make_template, number

    with Session(get_engine(), expire_on_commit=False) as session:
        admin, _ = create_user(session=session, actor=None, email=ADMIN[0], role="admin", password=ADMIN[1])
        create_user(session=session, actor=None, email=BASIC[0], role="basic", password=BASIC[1])
        channels, campaigns, offset = [], [], 0
        for k, (sb, n, cap) in enumerate(zip(sandboxes, sizes, caps, strict=True)):
            channel = Channel(
                name=f"Line {k + 1}",
                kind="sandbox",
                status="connected",
                phone_number_id=sb.pnid,
                business_account_id=sb.waba,
                access_token=sb.token,
                app_secret=sb.secret,
                verify_token=f"verify-{k}",
                api_base_url=sb.url,
                api_version="v23.0",
                messages_per_second=cap,
            )
            session.add(channel)
            session.commit()
            template = make_template(session, channel)
            clist = make_list(session, [number(offset + i) for i in range(n)], name=f"Audience {k + 1}")
            offset += n
            campaign = make_campaign(session, channel, template, clist, mapping=MAPPING, name=f"Topology {k + 1}")
            campaign.wizard_step = 3  # ready for review: a browser can send it from the wizard
            session.add(campaign)
            session.commit()
            channels.append(channel)
            campaigns.append(campaign)
        session.expunge_all()
    return {"admin": admin, "channels": channels, "campaigns": campaigns}
