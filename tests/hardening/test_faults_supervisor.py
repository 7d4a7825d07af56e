"""Issue 17: `hubcast run` heals itself. One real `hubcast run` (embedded Redis, worker, Sandbox, the built
Reflex app) is started for the module, and each test SIGKILLs one of its children, as the kernel's
out-of-memory killer would, while a campaign sends at a capped rate:

- the worker: restarted; the campaign completes; nobody gets a second message (the Sandbox's send log);
- the Sandbox: restarted on its port; rows in flight end `unknown` or settled, none is resent;
- the embedded Redis: restarted with its data (append-only file); the campaign completes;
- the web app: restarted (it builds the frontend again) and answers /healthz again;
- then the worker again and again: more crashes than the policy allows within its window stop everything,
  with a message naming the child, how often it crashed and where its log is.

While a child is down, /healthz keeps answering 200 and names it "restarting". The Sandbox logs every send
to data/sandbox/sends.jsonl (appended across its restarts), which is what "exactly once" is checked against.
With a Chromium (the e2e layer's `browser` fixture; without one those checks are skipped, the rest runs), a
signed-in All Campaigns page shows "Sending is paused while the worker restarts" while the worker is down,
and after the web app's restart the same page reconnects with its session and opens a campaign.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis as redis_lib
from sqlmodel import Session

from app import db as app_db
from app.migrate import upgrade_to_head
from app.settings import PROJECT_ROOT, reset_settings_cache
from tests.support.e2e import do_login
from tests.support.factories import campaign_row, make_campaign, make_channel, make_list, make_template, number
from tests.support.hardening import figures, record
from tests.support.sandbox import free_port
from tests.support.wait import wait_until

N, CAP = 2000, 200  # per campaign: ten seconds of sending at the cap
EMAIL, PASSWORD = "sender@example.com", "correct horse battery"
SCENARIOS = ("worker", "sandbox", "redis")
START_TIMEOUT = 420  # the first run installs the frontend's npm packages into WEB_DIR
WEB_RESTART_TIMEOUT = 240  # a restarted web app builds the frontend again
FINAL = ("sent", "failed", "paused")
# The Sandbox posts status webhooks to the app, so a sent row moves on to delivered and read.
SETTLED = {"sent", "delivered", "read", "unknown"}
# A frontend build of its own (as the e2e harness has), so nothing else building .web swaps files under it.
WEB_DIR = Path(os.environ.get("HUBCAST_SUPERVISOR_WEB_DIR", PROJECT_ROOT / "build" / "supervisor-web")).resolve()


@dataclass
class Run:
    proc: subprocess.Popen
    port: int
    data_dir: Path
    log_path: Path
    user_id: int
    campaigns: dict[str, int]
    addresses: dict[str, set[str]]
    seen: dict[str, set[str]] = field(default_factory=dict)  # states /healthz reported per component

    @property
    def sends_file(self) -> Path:
        return self.data_dir / "sandbox" / "sends.jsonl"

    def status(self) -> dict:
        try:
            return json.loads((self.data_dir / "run" / "status.json").read_text())["children"]
        except (OSError, ValueError, KeyError):
            return {}

    def child(self, key: str) -> dict:
        return self.status().get(key, {})

    def healthz(self) -> tuple[int | None, dict]:
        try:
            resp = httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=3)
        except httpx.HTTPError:
            return None, {}
        body = resp.json() if resp.headers.get("content-type", "").startswith("application/json") else {}
        for key, value in body.items():
            self.seen.setdefault(key, set()).add(value)
        return resp.status_code, body

    def per_recipient(self, scenario: str) -> Counter:
        wanted = self.addresses[scenario]
        counts: Counter = Counter()
        if self.sends_file.exists():
            for line in self.sends_file.read_text().splitlines():
                if line.strip():
                    address = "+" + json.loads(line)["wa_id"]
                    if address in wanted:
                        counts[address] += 1
        return counts

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def redis_url(self) -> str:
        return next(
            line.split("embedded Redis started at ")[1].split()[0]
            for line in self.log().splitlines()
            if "embedded Redis started at " in line
        )


class _SendsLog:
    """What tests.support.hardening.figures reads from a Sandbox (`log()["per_recipient"]`), taken from
    the send log file, which outlives the Sandbox's restarts (its in-memory counters do not)."""

    def __init__(self, run: Run, scenario: str):
        self.run, self.scenario = run, scenario

    def log(self) -> dict:
        return {"per_recipient": dict(self.run.per_recipient(self.scenario))}


@contextlib.contextmanager
def _web_dir_lock():
    WEB_DIR.mkdir(parents=True, exist_ok=True)
    with open(WEB_DIR.parent / f".{WEB_DIR.name}.lock", "w") as handle:

        def locked() -> bool:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                return False

        wait_until(locked, START_TIMEOUT, interval=1, message=f"the lock on {WEB_DIR}")
        yield


def _align_web_package_json() -> None:
    # As tests/support/e2e.py does for its web dir: keep Reflex from rewriting the committed reflex.lock.
    root, web = PROJECT_ROOT / "reflex.lock" / "package.json", WEB_DIR / "package.json"
    try:
        if root.read_bytes() != web.read_bytes() and json.loads(root.read_text()) == json.loads(web.read_text()):
            web.write_bytes(root.read_bytes())
    except (OSError, ValueError):
        pass


def _prepare(data_dir: Path, sandbox_port: int) -> tuple[int, dict[str, int], dict[str, set[str]]]:
    """A migrated database with a Sandbox channel (capped at CAP/s) and one draft campaign per scenario."""
    from app.services.accounts.users import create_user

    upgrade_to_head(os.environ["DATABASE_URL"])
    with Session(app_db.get_engine(), expire_on_commit=False) as s:
        user, _ = create_user(session=s, actor=None, email=EMAIL, role="basic", password=PASSWORD)
        channel = make_channel(s, f"http://127.0.0.1:{sandbox_port}", mps=CAP)
        template = make_template(s, channel)
        campaigns, addresses = {}, {}
        for k, scenario in enumerate(SCENARIOS):
            numbers = [number(i) for i in range(k * N, (k + 1) * N)]
            clist = make_list(s, numbers, name=f"{scenario} audience")
            campaigns[scenario] = make_campaign(s, channel, template, clist, name=f"{scenario} crash").id
            addresses[scenario] = set(numbers)
        return user.id, campaigns, addresses


def _descendants(root: int) -> set[int]:
    """Every process below `root`, from /proc (the supervisor's children each run in their own session)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found


def _kill_tree(proc: subprocess.Popen) -> None:
    """Cleanup when a test failed half-way: nothing may keep running."""
    if proc.poll() is None:
        for pid in _descendants(proc.pid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def hubcast_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("supervised")
    data_dir = tmp / "data"
    data_dir.mkdir()
    port, sandbox_port = free_port(), free_port()
    with pytest.MonkeyPatch.context() as mp, _web_dir_lock():
        mp.setenv("DATABASE_URL", f"sqlite:///{data_dir / 'hubcast.db'}")
        mp.setenv("HUBCAST_DATA_DIR", str(data_dir))
        mp.delenv("REDIS_URL", raising=False)
        reset_settings_cache()
        app_db._engine_for.cache_clear()
        user_id, campaigns, addresses = _prepare(data_dir, sandbox_port)
        _align_web_package_json()
        env = {
            **os.environ,
            "PORT": str(port),
            "HUBCAST_ENV": "test",
            "PYTHONUNBUFFERED": "1",
            "REFLEX_WEB_WORKDIR": str(WEB_DIR),
            "REFLEX_STATES_WORKDIR": str(data_dir / "states"),
            # rows a killed worker held become `unknown` after 10 s, not 10 minutes
            "HUBCAST_SEND_STUCK_GRACE_S": "10",
            "HUBCAST_SEND_TICK_INTERVAL_S": "1",
            "HUBCAST_SEND_ALIVE_TTL_S": "10",
            # the default 5 crashes in 5 minutes, each restart 5 s after the crash (not 1 s doubling up to
            # 60 s): long enough that the page, which polls every 2 s, always sees the worker down, whatever
            # the machine's speed (with 1 s an idle machine restarted the worker between two polls)
            "HUBCAST_RESTART_BACKOFF_S": "5",
            "HUBCAST_RESTART_BACKOFF_MAX_S": "5",
            "GRANIAN_WORKERS": "1",
        }
        for name in (
            "HUBCAST_PUBLIC_URL",
            "HUBCAST_API_URL",
            "HUBCAST_EXTRA_ORIGINS",
            "HUBCAST_SANDBOX_LOG_FILE",
            "HUBCAST_RESTART_MAX_CRASHES",
            "HUBCAST_RESTART_WINDOW_S",
        ):
            env.pop(name, None)
        log_path = tmp / "hubcast-run.log"
        with log_path.open("w") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "run", "--no-demo"],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        run = Run(proc, port, data_dir, log_path, user_id, campaigns, addresses)
        try:

            def serving() -> bool:
                assert proc.poll() is None, f"hubcast run exited early:\n{run.log()[-4000:]}"
                return "Hubcast is running" in run.log() and run.healthz()[0] == 200

            wait_until(serving, START_TIMEOUT, interval=1, message="hubcast run serving")
            # This process starts the campaigns: it enqueues their first jobs on the embedded Redis.
            mp.setenv("REDIS_URL", run.redis_url())
            reset_settings_cache()
            yield run
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=60)
            _kill_tree(proc)
            app_db.get_engine().dispose()
            app_db._engine_for.cache_clear()
        reset_settings_cache()


@pytest.fixture(scope="module")
def campaigns_page(hubcast_run, request):
    """All Campaigns, signed in, in Chromium; None when there is no Chromium (the browser checks are skipped)."""
    try:
        browser = request.getfixturevalue("browser")
    except pytest.skip.Exception:
        yield None
        return
    from playwright.sync_api import expect

    context = browser.new_context(
        base_url=f"http://localhost:{hubcast_run.port}", viewport={"width": 1440, "height": 900}
    )
    context.set_default_timeout(20_000)
    page = context.new_page()
    try:
        do_login(page, EMAIL, PASSWORD)
        expect(page.locator("#page-title")).to_have_text("Dashboard", timeout=60_000)  # where a sign-in lands
        page.locator("#nav-campaigns").click()
        expect(page.locator("#page-title")).to_have_text("All Campaigns", timeout=60_000)
        yield page
    finally:
        context.close()


# --- helpers -------------------------------------------------------------------------------------


def _start(run: Run, scenario: str) -> None:
    from app.models import User
    from app.services.sending.lifecycle import start_campaign

    with Session(app_db.get_engine(), expire_on_commit=False) as s:
        start_campaign(session=s, actor=s.get(User, run.user_id), campaign_id=run.campaigns[scenario])


def _settled(run: Run, scenario: str):
    row = campaign_row(run.campaigns[scenario])
    return row if row.status in FINAL else None


def _kill_child(run: Run, key: str) -> tuple[int, float]:
    """SIGKILL the child's main process only (what the OOM killer does); the supervisor cleans up its group."""
    pid = run.child(key)["pid"]
    assert pid, run.status()
    os.kill(pid, signal.SIGKILL)
    return pid, time.monotonic()


def _restarted(run: Run, key: str, old_pid: int, timeout: float = 60) -> dict:
    def back():
        run.healthz()  # sampled while waiting: what /healthz said while the child was down
        child = run.child(key)
        return child if child.get("state") == "ok" and child.get("pid") not in (None, old_pid) else None

    return wait_until(back, timeout, interval=0.1, message=f"the {key} restarted")


def _kill_mid_campaign(run: Run, scenario: str, key: str, while_down=None) -> dict:
    """Start the scenario's campaign, SIGKILL `key` a quarter of the way, wait for the restart and the end.
    `while_down()` runs right after the kill."""
    _start(run, scenario)
    wait_until(lambda: sum(run.per_recipient(scenario).values()) >= N // 4, 90, interval=0.2, message="a quarter sent")
    at_kill = sum(run.per_recipient(scenario).values())
    old_pid, killed_at = _kill_child(run, key)
    if while_down is not None:
        while_down()
    restarted = _restarted(run, key, old_pid)
    back_after = time.monotonic() - killed_at
    done = wait_until(lambda: _settled(run, scenario), 180, interval=0.5, message=f"the {scenario} campaign settled")
    fig = figures(_SendsLog(run, scenario), run.campaigns[scenario])
    return {
        "done": done,
        "fig": fig,
        "at_kill": at_kill,
        "back_after_s": round(back_after, 1),
        "recovery_s": round(time.monotonic() - killed_at, 1),
        "restarted": restarted,
    }


def _search_answers(page, run: Run, scenario: str) -> bool:
    """A round trip through the web app's websocket and its Redis-held state: search All Campaigns for one
    scenario's campaign and see the table narrowed to it (then clear the search)."""
    from playwright.sync_api import expect

    wanted, other = run.campaigns[scenario], run.campaigns["sandbox" if scenario != "sandbox" else "worker"]
    page.locator("#campaign-search").fill(f"{scenario} crash")
    expect(page.locator(f"#campaign-link-{wanted}")).to_be_visible(timeout=60_000)
    expect(page.locator(f"#campaign-link-{other}")).to_have_count(0, timeout=60_000)
    page.locator("#campaign-search").fill("")
    expect(page.locator(f"#campaign-link-{other}")).to_be_visible(timeout=60_000)
    return True


def _record(name: str, ok: bool, result: dict, key: str, run: Run, **extra) -> None:
    fig = result["fig"]
    record(
        "fault",
        name,
        ok=ok,
        recovery_s=result["recovery_s"],
        restarted_after_s=result["back_after_s"],
        sent_at_kill=result["at_kill"],
        healthz_said=sorted(run.seen.get(key, set())),
        **{k: v for k, v in fig.items() if k != "statuses"},
        **extra,
    )


# --- the scenarios ---------------------------------------------------------------------------------


@pytest.mark.timeout(START_TIMEOUT + 300)
def test_sigkill_the_worker_mid_campaign(hubcast_run, campaigns_page):
    run, page = hubcast_run, campaigns_page
    banner = page.locator("#worker-paused-banner") if page is not None else None
    if banner is not None:
        from playwright.sync_api import expect

        expect(banner).to_be_hidden()

    def banner_shows() -> None:
        if banner is not None:  # while the worker is down, the open page says so (it polls every 2 s)
            expect(banner).to_be_visible()
            expect(banner).to_contain_text("Sending is paused while the worker restarts")

    result = _kill_mid_campaign(run, "worker", "worker", while_down=banner_shows)
    if banner is not None:
        expect(banner).to_be_hidden()  # and stops saying so once the worker is back
    done, fig = result["done"], result["fig"]
    per = run.per_recipient("worker")
    ok = (
        done.status == "sent"
        and fig["duplicated"] == 0
        and fig["lost"] == 0
        and set(fig["statuses"]) <= SETTLED
        and "restarting" in run.seen.get("worker", set())
    )
    _record(
        "hubcast run: SIGKILL the worker mid-campaign (restarted by the supervisor)",
        ok,
        result,
        "worker",
        run,
        banner_checked_in_browser=banner is not None,
    )
    assert done.status == "sent", done.pause_reason
    assert fig["duplicated"] == 0 and fig["lost"] == 0 and fig["expected"] == N, fig
    assert set(fig["statuses"]) <= SETTLED, fig["statuses"]
    assert all(n == 1 for n in per.values()), "every recipient was sent at most once"
    assert "restarting" in run.seen.get("worker", set()), run.seen  # /healthz said so, and kept answering
    output = run.log()
    assert "the worker was killed by SIGKILL; restarting it in 5 s" in output, output[-3000:]
    worker_log = (run.data_dir / "logs" / "worker.log").read_text(errors="replace")
    assert worker_log.count("hubcast: worker started") == 2, worker_log[-2000:]


@pytest.mark.timeout(300)
def test_sigkill_the_sandbox_mid_campaign(hubcast_run):
    run = hubcast_run
    result = _kill_mid_campaign(run, "sandbox", "sandbox")
    done, fig = result["done"], result["fig"]
    ok = done.status == "sent" and fig["duplicated"] == 0 and fig["lost"] == 0 and set(fig["statuses"]) <= SETTLED
    _record("hubcast run: SIGKILL the Sandbox mid-campaign (restarted by the supervisor)", ok, result, "sandbox", run)
    assert done.status == "sent", done.pause_reason
    assert fig["duplicated"] == 0, "no message in flight was resent"
    assert fig["lost"] == 0 and set(fig["statuses"]) <= SETTLED, fig["statuses"]
    assert "restarting" in run.seen.get("sandbox", set()), run.seen
    sandbox_log = (run.data_dir / "logs" / "sandbox.log").read_text(errors="replace")
    assert sandbox_log.count("hubcast: Sandbox (WhatsApp simulator) started") == 2


@pytest.mark.timeout(300)
def test_sigkill_the_embedded_redis_mid_campaign(hubcast_run, campaigns_page):
    run, page = hubcast_run, campaigns_page
    client = redis_lib.Redis.from_url(run.redis_url())
    client.set("hubcast:test:survives-a-restart", "yes")  # in the append-only file before the kill comes
    result = _kill_mid_campaign(run, "redis", "redis")
    done, fig = result["done"], result["fig"]
    kept = client.get("hubcast:test:survives-a-restart") == b"yes"
    # The web app's Redis clients (its UI state, its locks) reconnected too: the open page still answers.
    ui_answers = _search_answers(page, run, "redis") if page is not None else None
    ok = done.status == "sent" and fig["duplicated"] == 0 and fig["lost"] == 0 and kept
    _record(
        "hubcast run: SIGKILL the embedded Redis mid-campaign (restarted with its data)",
        ok,
        result,
        "redis",
        run,
        browser_page_answered_after=ui_answers,
    )
    client.close()
    assert kept, "the restarted Redis came back with its data"
    assert done.status == "sent", done.pause_reason
    assert fig["duplicated"] == 0 and fig["lost"] == 0, fig
    assert set(fig["statuses"]) <= SETTLED, fig["statuses"]
    assert run.healthz()[1].get("redis") == "ok"


@pytest.mark.timeout(WEB_RESTART_TIMEOUT + 60)
def test_sigkill_the_web_app(hubcast_run, campaigns_page):
    run, page = hubcast_run, campaigns_page
    old_pid, killed_at = _kill_child(run, "web")
    # The rest keeps running while the web app rebuilds: the supervisor says so in its status file.
    wait_until(lambda: run.child("web").get("state") == "restarting", 30, message="web marked restarting")
    assert run.child("worker").get("state") == "ok" and run.child("sandbox").get("state") == "ok"
    restarted = _restarted(run, "web", old_pid, timeout=WEB_RESTART_TIMEOUT)
    code, body = run.healthz()
    back_after = round(time.monotonic() - killed_at, 1)
    reconnected = None
    if page is not None:
        # The page open since before the crash reconnects by itself (its websocket, its UI state in Redis) and
        # answers; loading another page is still signed in (the session is on the server, the cookie in the
        # browser). Loaded, not clicked: the restarted web app built the frontend again, and while this shared
        # tree is being edited its chunks may differ from the ones the open page knows.
        from playwright.sync_api import expect

        _search_answers(page, run, "worker")
        page.goto(f"/campaigns/{run.campaigns['worker']}")
        expect(page.locator("#campaign-name")).to_have_text("worker crash", timeout=60_000)
        expect(page.locator("#current-user-email")).to_have_text(EMAIL)
        reconnected = True
    ok = code == 200 and body.get("web") == "ok" and body.get("worker") == "ok"
    record(
        "fault",
        "hubcast run: SIGKILL the web app (restarted, /healthz answers again)",
        ok=ok,
        recovery_s=back_after,
        healthz=body,
        web_pid_after=restarted.get("pid"),
        browser_reconnected_signed_in=reconnected,
    )
    assert code == 200 and body.get("status") == "ok", body
    assert httpx.get(f"http://127.0.0.1:{run.port}/login", timeout=10, follow_redirects=True).status_code == 200


@pytest.mark.timeout(180)
def test_a_worker_crashing_again_and_again_stops_everything(hubcast_run):
    run = hubcast_run
    kills = 0
    began = time.monotonic()
    while run.proc.poll() is None:
        child = wait_until(
            lambda: run.child("worker").get("state") == "ok" and run.child("worker") or run.proc.poll() is not None,
            60,
            message="a running worker to kill",
        )
        if run.proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.kill(child["pid"], signal.SIGKILL)
        kills += 1
        wait_until(
            lambda pid=child["pid"]: run.child("worker").get("pid") != pid or run.proc.poll() is not None,
            30,
            message="the supervisor noticed",
        )
    code = run.proc.wait(timeout=60)
    last = run.log().strip().splitlines()[-1]
    log_path = run.data_dir / "logs" / "worker.log"
    expected = (
        f"hubcast: error: The worker crashed 6 times within 5 minutes (last: it was killed by SIGKILL); "
        f"gave up and stopped everything. Its log: {log_path}"
    )
    ok = code != 0 and last == expected
    record(
        "fault",
        "hubcast run: the worker crashes 6 times within 5 minutes (supervisor gives up)",
        ok=ok,
        kills_by_this_test=kills,
        exit_code=code,
        seconds=round(time.monotonic() - began, 1),
        message=last,
    )
    assert code != 0
    assert last == expected
    assert not (run.data_dir / "run" / "status.json").exists()
