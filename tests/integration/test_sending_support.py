"""Shared pieces for the sending tests (no tests here): the Sandbox as a subprocess, a campaign
factory writing contacts/lists in bulk, worker runners (in-process burst or `hubcast worker`
subprocesses) and readers of the Sandbox's send log."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import httpx
from sqlalchemy import insert, select
from sqlmodel import Session

from app.db import get_engine
from app.models import Campaign, CampaignRecipient, Channel, Contact, ContactIdentity, ContactList, ListMembership, Template
from app.settings import PROJECT_ROOT
from app.timeutil import utcnow

TOKEN = "send-test-token-0123456789"
SECRET = "send-test-app-secret"
PNID, WABA = "100000000000001", "200000000000001"
ORDER_UPDATE = [
    {"type": "BODY", "text": "Hi {{1}}, your order {{2}} has shipped and should arrive by {{3}}. "
                             "Track it any time from your account.",
     "example": {"body_text": [["Maria", "#48213", "Friday, May 16"]]}},
    {"type": "FOOTER", "text": "Hubcast Store"},
]
MAPPING = {"body.1": {"source": "field", "key": "first_name"},
           "body.2": {"source": "text", "value": "#48213"},
           "body.3": {"source": "text", "value": "Friday"}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sandbox:
    def __init__(self, url: str, log_file: Path, proc: subprocess.Popen, token: str = TOKEN):
        self.url, self.log_file, self.proc, self.token = url, log_file, proc, token

    def admin(self, method: str, path: str, **kwargs) -> dict:
        r = httpx.request(method, self.url + path, headers={"Authorization": f"Bearer {self.token}"}, timeout=10,
                          **kwargs)
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


@contextmanager
def run_sandbox(tmp: Path, *, mps: float = 1000, latency_ms: float = 0, extra: tuple[str, ...] = (),
                token: str = TOKEN, secret: str = SECRET, port: int | None = None, database_url: str | None = None,
                timeout: float = 30):
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
        args = [sys.executable, "-m", "app.whatsapp.sandbox", "--port", str(port), "--app-secret", secret,
                "--access-token", token, "--mps", str(mps), "--latency-ms", str(latency_ms), "--seed", "1",
                "--log-file", str(log_file), *extra]
    else:
        args = [sys.executable, "-m", "app.cli", "sandbox", "--port", str(port), "--seed", "1",
                "--log-file", str(log_file), *extra]
        env.update(DATABASE_URL=database_url, HUBCAST_DATA_DIR=str(tmp / "data"))
    out, err = open(tmp / "sandbox.out", "wb"), open(tmp / "sandbox.err", "wb")
    proc = subprocess.Popen(args, cwd=PROJECT_ROOT, stdout=out, stderr=err, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            # An exited Sandbox (bad argument, port taken) fails at once, with what it said.
            assert proc.poll() is None, f"sandbox exited with {proc.returncode}: " + (tmp / "sandbox.err").read_text()
            try:
                if httpx.get(f"{url}/_sandbox/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"sandbox did not start within {timeout}s: " + (
                tmp / "sandbox.err").read_text()
            time.sleep(0.1)
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


def make_channel(session: Session, url: str, *, mps: int = 1000, token: str = TOKEN, status: str = "connected") -> Channel:
    channel = Channel(name=f"Sandbox {url}", kind="sandbox", status=status, phone_number_id=PNID,
                      business_account_id=WABA, access_token=token, app_secret=SECRET, verify_token="v",
                      api_base_url=url, api_version="v23.0", messages_per_second=mps)
    session.add(channel)
    session.commit()
    return channel


def make_template(session: Session, channel: Channel, *, name: str = "order_update", status: str = "APPROVED",
                  components: list | None = None) -> Template:
    template = Template(channel_id=channel.id, name=name, language="en_US", category="UTILITY", status=status,
                        components=components or ORDER_UPDATE)
    session.add(template)
    session.commit()
    return template


def number(i: int) -> str:
    """Valid French mobile numbers that never hit the Sandbox's failure suffixes (0000, 0001)."""
    return f"+3361{i:05d}{(i * 7) % 90 + 10:02d}"


def make_list(session: Session, numbers: list[str], *, first_name=lambda i: f"Ana{i}", name: str = "Audience",
              subscribed=lambda i: True) -> ContactList:
    """Contacts with one WhatsApp identity each, all members of a new list (bulk inserts)."""
    engine = get_engine()
    now = utcnow()
    clist = ContactList(name=name)
    session.add(clist)
    session.commit()
    with engine.begin() as conn:
        first = conn.execute(select(Contact.id).order_by(Contact.id.desc()).limit(1)).scalar() or 0
        conn.execute(insert(Contact.__table__), [
            {"id": first + 1 + i, "first_name": first_name(i), "last_name": "", "email": "", "country": "FR",
             "city": "", "language": "", "custom_fields": {}, "created_at": now, "updated_at": now}
            for i in range(len(numbers))])
        conn.execute(insert(ContactIdentity.__table__), [
            {"contact_id": first + 1 + i, "channel_type": "whatsapp", "address": n, "subscribed": subscribed(i),
             "subscription_changed_at": now, "created_at": now} for i, n in enumerate(numbers)])
        conn.execute(insert(ListMembership.__table__), [
            {"list_id": clist.id, "contact_id": first + 1 + i, "source": "manual", "added_at": now}
            for i in range(len(numbers))])
    return clist


def make_campaign(session: Session, channel: Channel, template: Template, clist: ContactList, *,
                  mapping: dict | None = None, name: str = "Spring") -> Campaign:
    campaign = Campaign(name=name, audience_kind="list", audience_list_id=clist.id, channel_id=channel.id,
                        template_id=template.id, variable_mapping=mapping if mapping is not None else MAPPING)
    session.add(campaign)
    session.commit()
    return campaign


def make_sandbox_campaign(session: Session, sandbox: Sandbox, size: int, *, mps: int = 1000) -> Campaign:
    """A draft campaign of `order_update` to `size` numbers (`number(0..size-1)`), on a channel to `sandbox`."""
    channel = make_channel(session, sandbox.url, mps=mps)
    template = make_template(session, channel)
    return make_campaign(session, channel, template, make_list(session, [number(i) for i in range(size)]))


def campaign_row(campaign_id: int) -> Campaign:
    with Session(get_engine()) as s:
        return s.get(Campaign, campaign_id)


def recipients(campaign_id: int) -> list[CampaignRecipient]:
    with Session(get_engine()) as s:
        return list(s.exec(select(CampaignRecipient).where(CampaignRecipient.campaign_id == campaign_id)
                           .order_by(CampaignRecipient.id)).scalars())


def run_burst(redis_url: str) -> None:
    """Run the queues dry in this process (RQ SimpleWorker, burst), keeping pytest's signal handlers."""
    from workers.worker import run_worker

    saved = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        run_worker(redis_url, burst=True, logging_level="WARNING")
    finally:
        signal.signal(signal.SIGINT, saved[0])
        signal.signal(signal.SIGTERM, saved[1])


def wait_for(predicate, timeout: float, interval: float = 0.2, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    result = predicate()
    assert result, f"{message} not met within {timeout}s"
    return result


def drive_until(redis_url: str, campaign_id: int, statuses=("sent", "failed", "paused", "cancelled"),
                timeout: float = 60) -> Campaign:
    """Burst workers (and the sweeper's finishing step) until the campaign reaches one of `statuses`."""
    from app.services.sending.sweeper import sweep

    deadline = time.monotonic() + timeout
    while True:
        run_burst(redis_url)
        sweep()
        campaign = campaign_row(campaign_id)
        if campaign.status in statuses:
            return campaign
        assert time.monotonic() < deadline, f"campaign still {campaign.status} after {timeout}s"
        time.sleep(0.2)


def worker_process(tmp: Path, database_url: str, redis_url: str, name: str, env_extra: dict | None = None):
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "HUBCAST_DATA_DIR": str(tmp / "data"),
           "PYTHONUNBUFFERED": "1", **(env_extra or {})}
    log = open(tmp / f"{name}.log", "wb")
    return subprocess.Popen([sys.executable, "-m", "app.cli", "worker"], cwd=PROJECT_ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def stop_process(proc: subprocess.Popen, sig=signal.SIGTERM) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def max_per_window(entries: list[dict], window_s: float = 1.0) -> int:
    """The most accepted sends in any `window_s`-long window (sliding, from the Sandbox's timestamps)."""
    times = sorted(datetime.fromisoformat(e["at"]).timestamp() for e in entries)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window_s:
            j += 1
        best = max(best, i - j + 1)
    return best


class TcpProxy:
    """A TCP relay the test controls, between workers and a server (e.g. PostgreSQL): `cut()` drops every
    open connection and refuses new ones (a network outage), `restore()` lets connections through again."""

    def __init__(self, target_host: str, target_port: int):
        import threading

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
        import threading

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


@contextmanager
def http_api_process(tmp: Path, database_url: str, redis_url: str):
    """The app's plain HTTP routes (webhooks, /healthz) served by a real process; yields its base URL."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "HUBCAST_DATA_DIR": str(tmp / "data"),
           "PYTHONUNBUFFERED": "1"}
    tmp.mkdir(parents=True, exist_ok=True)
    log = open(tmp / "http_api.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from app.whatsapp.sandbox.server import serve; "
         "from app.http_api import build_http_api; serve(build_http_api(), '127.0.0.1', int(sys.argv[1]))", str(port)],
        cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        def up():
            assert proc.poll() is None, (tmp / "http_api.log").read_text(errors="replace")[-2000:]
            try:
                return httpx.get(url + "/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False
        wait_for(up, timeout=30, interval=0.1, message="http api up")
        yield url
    finally:
        stop_process(proc)
        log.close()
