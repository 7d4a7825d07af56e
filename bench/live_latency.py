"""Benchmark: live status latency (issue 7 §5), from a webhook's arrival to the count changing in the browser.

Starts the built app the way the e2e layer does (the same functions from tests/e2e/conftest.py: its own
build in build/e2e-web under a lock, a fresh SQLite database, Redis), writes one `sending` campaign whose
recipients are already `sent` with known wamids, signs in with Chromium (Playwright) and opens the
campaign's detail page in one tab and All Campaigns in another. Then, one change at a time, it posts a
signed status webhook (delivered, then read, for the next recipient) to /webhooks/whatsapp, after a random
pause within the pages' refresh interval (so arrivals fall anywhere in the pages' refresh cycle), and
measures from just before the POST to the moment the count changed in each page.

The moment of change is recorded in the page by a MutationObserver (wall clock, `performance.timeOrigin +
performance.now()`), not by polling, and compared with `time.time()` taken just before the POST (same
machine, same clock), so the figure has no polling granularity in it.

Baselines in the same run:
- server floor: from the same POST to the campaign's counters committed in the database (polled every
  5 ms), i.e. what ingestion alone costs; page latency minus this is the live-update path (poll interval,
  websocket push, render).
- reload by hand: the non-live alternative: after a POST, open the detail page afresh until the count shows
  the change (the first load starts right after the POST is answered), i.e. what a user reloading waits.

Prints median / p95 / max and appends a table to bench/results/live_latency.md.

    .venv/bin/python bench/live_latency.py [--changes 24] [--reloads 10]
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("HUBCAST_ENV", "test")
os.environ.setdefault("HUBCAST_SECRET_KEY", "bench-secret-key-that-is-long-enough-0123456789")

import httpx  # noqa: E402
import playwright.sync_api as pw  # noqa: E402
from audience import machine  # noqa: E402
from sqlalchemy import select, text  # noqa: E402
from sqlmodel import Session  # noqa: E402

from app.db import make_engine  # noqa: E402
from app.models import Campaign, CampaignRecipient, Channel  # noqa: E402
from app.services.sending import progress as campaign_progress  # noqa: E402
from app.whatsapp.signature import HEADER, sign  # noqa: E402
from state.campaigns import LIVE_INTERVAL_S  # noqa: E402
from tests.support import e2e as harness  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "live_latency.md"
SECRET, PNID = "bench-live-app-secret", "bench-live-pnid"
TARGET_S = 2.0
TIMEOUT_MS = 15_000

# Records, per watched selector, every text the element shows and when (wall clock, ms): set up once per page.
WATCH_JS = """(selectors) => {
  window.__watch = {};
  const now = () => performance.timeOrigin + performance.now();
  const look = () => {
    for (const sel of selectors) {
      const el = document.querySelector(sel);
      const txt = el ? el.textContent : null;
      const w = window.__watch[sel] || (window.__watch[sel] = {last: undefined, log: []});
      if (txt !== w.last) { w.last = txt; w.log.push([txt, now()]); }
    }
  };
  look();
  new MutationObserver(look).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""
SHOWN_JS = "([sel, want]) => { const w = window.__watch[sel]; return !!w && w.last === want; }"
WHEN_JS = (
    "([sel, want]) => { const log = window.__watch[sel].log; for (let i = log.length - 1; i >= 0; i--)"
    " { if (log[i][0] !== want) return log[i + 1][1]; } return log[0][1]; }"
)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def seed_campaign(database_url: str, recipients: int) -> int:
    engine = make_engine(database_url)
    try:
        with Session(engine, expire_on_commit=False) as s:
            channel = Channel(
                name="Bench live channel", kind="whatsapp_cloud", phone_number_id=PNID, status="connected"
            )
            s.add(channel)
            s.commit()
            # Plain text on purpose: the server seals with its own key; an unsealed value is read as is.
            s.execute(text("UPDATE channels SET app_secret = :v WHERE id = :id"), {"v": SECRET, "id": channel.id})
            campaign = Campaign(name="Live latency", status="sending", channel_id=channel.id)
            s.add(campaign)
            s.commit()
            s.add_all(
                [
                    CampaignRecipient(
                        campaign_id=campaign.id,
                        address=f"+3361299{i:04d}",
                        status="sent",
                        message_id=wamid(campaign.id, i),
                    )
                    for i in range(recipients)
                ]
            )
            s.commit()
            campaign_progress.refresh_counters(s, campaign.id)
            s.commit()
            return campaign.id
    finally:
        engine.dispose()


def wamid(cid: int, i: int) -> str:
    return f"wamid.bench.live.{cid}.{i}"


def post_status(client: httpx.Client, base_url: str, cid: int, i: int, status: str) -> float:
    """Posts one signed status; returns the wall-clock time taken just before sending."""
    item = {"id": wamid(cid, i), "status": status, "timestamp": str(1_764_000_000 + i), "recipient_id": "3361"}
    raw = json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "1",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {"phone_number_id": PNID, "display_phone_number": "1555"},
                                "statuses": [item],
                            },
                        }
                    ],
                }
            ],
        },
        separators=(",", ":"),
    ).encode()
    headers = {HEADER: sign(raw, SECRET), "Content-Type": "application/json"}
    started = time.time()
    response = client.post(f"{base_url}/webhooks/whatsapp", content=raw, headers=headers)
    if response.status_code != 200:
        raise SystemExit(f"webhook answered {response.status_code}: {response.text[:200]}")
    return started


def counters(engine, cid: int) -> tuple[int, int]:
    with engine.connect() as conn:
        row = conn.execute(select(Campaign.delivered_count, Campaign.read_count).where(Campaign.id == cid)).one()
    return row[0], row[1]


def wait_counters(engine, cid: int, want: tuple[int, int], since: float) -> float:
    """Seconds from `since` until the committed counters equal `want` (polled every 5 ms: the floor's figure
    has that granularity, which is small beside what is measured)."""
    deadline = time.time() + TIMEOUT_MS / 1000
    while counters(engine, cid) != want:
        if time.time() > deadline:
            raise SystemExit(f"counters never reached {want}")
        time.sleep(0.005)
    return time.time() - since


def launch(p) -> pw.Browser:
    candidates = [os.environ.get("HUBCAST_CHROMIUM", "").strip()] + list(harness.SYSTEM_CHROMIUM) + [None]
    errors = []
    for exe in candidates:
        if exe == "" or (exe and not os.path.exists(exe)):
            continue
        try:
            return p.chromium.launch(executable_path=exe, args=harness.CHROMIUM_ARGS)
        except pw.Error as exc:
            errors.append(f"{exe or 'playwright chromium'}: {str(exc).splitlines()[0][:120]}")
    raise SystemExit("no Chromium: " + "; ".join(errors))


def signed_in_page(browser, base_url: str, path: str):
    context = browser.new_context(base_url=base_url, viewport={"width": 1440, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    account = harness.ACCOUNTS["basic"]
    harness.do_login(page, account.email, account.password)
    page.wait_for_url(re.compile(r"/campaigns/?$"), timeout=TIMEOUT_MS)
    if path != "/campaigns":
        page.goto(path)
    return page


def start_app(stack: contextlib.ExitStack) -> harness.Hubcast:
    """The e2e harness's server start, step by step (the fixture itself only runs under pytest)."""
    stack.enter_context(harness._lock_web_dir())
    harness._align_web_package_json()
    data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hubcast-bench-live-")))
    database_url = f"sqlite:///{data_dir / 'hubcast.db'}"
    # No Sandbox or worker is started (statuses are posted by hand); newer harnesses also want its URL.
    if "sandbox_url" in inspect.signature(harness._prepare_database).parameters:
        harness._prepare_database(database_url, sandbox_url=f"http://127.0.0.1:{harness._free_port()}")
    else:
        harness._prepare_database(database_url)
    redis_url = harness._start_redis(stack, data_dir)
    log_path = data_dir / "server.log"
    log = stack.enter_context(open(log_path, "w"))
    port = harness._free_port()
    env = harness._server_env(port=port, data_dir=data_dir, database_url=database_url, redis_url=redis_url)
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
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    stack.callback(harness._stop_group, proc)
    started = time.monotonic()
    harness._wait_until_serving(proc, port, log_path)
    print(f"app serving on port {port} after {time.monotonic() - started:.0f} s (log {log_path})")
    return harness.Hubcast(base_url=f"http://localhost:{port}", database_url=database_url, log_path=log_path)


def measure(app: harness.Hubcast, changes: int, reloads: int) -> dict:
    recipients = changes // 2 + reloads + 2
    cid = seed_campaign(app.database_url, recipients)
    engine = make_engine(app.database_url)
    client = httpx.Client(timeout=10)
    detail_sel = {"delivered": "#card-delivered", "read": "#card-read"}
    list_sel = {"delivered": f"#campaign-{cid}-delivered", "read": f"#campaign-{cid}-read"}
    live: dict[str, list[float]] = {"detail": [], "list": []}
    floor: list[float] = []
    reload_s: list[float] = []
    reload_count: list[int] = []
    with pw.sync_playwright() as p:
        browser = launch(p)
        try:
            detail = signed_in_page(browser, app.base_url, f"/campaigns/{cid}")
            pw.expect(detail.locator("#card-sent")).to_have_text(str(recipients), timeout=TIMEOUT_MS)
            listing = signed_in_page(browser, app.base_url, "/campaigns")
            pw.expect(listing.locator(f"#campaign-{cid}-sent")).to_have_text(str(recipients), timeout=TIMEOUT_MS)
            pw.expect(detail.locator("#campaign-live")).to_be_visible()
            pw.expect(listing.locator("#campaigns-live")).to_be_visible()
            detail.evaluate(WATCH_JS, list(detail_sel.values()))
            listing.evaluate(WATCH_JS, list(list_sel.values()))

            rng = random.Random(7)
            delivered = read = 0  # delivered counts read ones too (the funnel the cards show)
            db = (0, 0)  # (delivered_count, read_count): the current-status counters in the database
            for k in range(changes):
                i, status = k // 2, ("delivered" if k % 2 == 0 else "read")
                if status == "delivered":
                    delivered, db = delivered + 1, (db[0] + 1, db[1])
                    want = str(delivered)
                else:
                    read, db = read + 1, (db[0] - 1, db[1] + 1)
                    want = str(read)
                # Webhooks arrive at any moment, not just after a page refresh: without this pause every POST
                # would follow the previous change (a refresh) and so land at the same point of the pages'
                # refresh cycle, biasing the figure. Seeded, so runs are comparable.
                time.sleep(rng.uniform(0, LIVE_INTERVAL_S))
                t0 = post_status(client, app.base_url, cid, i, status)
                floor.append(wait_counters(engine, cid, db, t0))
                for name, page, sels in (("detail", detail, detail_sel), ("list", listing, list_sel)):
                    page.wait_for_function(SHOWN_JS, arg=[sels[status], want], timeout=TIMEOUT_MS)
                    live[name].append(page.evaluate(WHEN_JS, [sels[status], want]) / 1000 - t0)
                print(
                    f"  change {k + 1}/{changes} ({status} #{i}): floor {floor[-1] * 1000:.0f} ms, "
                    f"detail {live['detail'][-1] * 1000:.0f} ms, list {live['list'][-1] * 1000:.0f} ms"
                )

            # Reload by hand: the next recipients, read straight away, on the detail page.
            listing.context.close()
            for j in range(reloads):
                i = changes // 2 + j
                read += 1
                delivered += 1
                t0 = post_status(client, app.base_url, cid, i, "read")
                tries = 0
                while True:
                    # A new tab rather than reload(): a reloaded tab keeps its state token, so it would first
                    # show the state it had (the old count) and then the fresh one.
                    tries += 1
                    tab = detail.context.new_page()
                    tab.goto(f"/campaigns/{cid}")
                    shown = tab.locator("#card-read")
                    pw.expect(shown).not_to_have_text("", timeout=TIMEOUT_MS)
                    value = shown.text_content()
                    tab.close()
                    if value == str(read):
                        break
                    if time.time() - t0 > TIMEOUT_MS / 1000:
                        raise SystemExit("reload never showed the change")
                reload_s.append(time.time() - t0)
                reload_count.append(tries)
                print(f"  reload {j + 1}/{reloads}: {reload_s[-1] * 1000:.0f} ms ({tries} reload(s))")
        finally:
            browser.close()
            client.close()
            engine.dispose()
    return {"live": live, "floor": floor, "reload": reload_s, "reload_count": reload_count}


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} / {pct(values, 0.95):.2f} / {max(values):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=24, help="status changes posted (each seen by 2 pages)")
    parser.add_argument("--reloads", type=int, default=10, help="baseline: changes observed by reloading")
    args = parser.parse_args()
    if args.changes < 20:
        parser.error("--changes must be at least 20")

    load_before = os.getloadavg()[0]
    with contextlib.ExitStack() as stack:
        app = start_app(stack)
        result = measure(app, args.changes, args.reloads)
    both = result["live"]["detail"] + result["live"]["list"]
    verdict = (
        "met"
        if max(both) <= TARGET_S
        else ("median met, tail not" if statistics.median(both) <= TARGET_S else "NOT met")
    )
    lines = [
        f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {machine()} (load average {load_before:.1f} at the start). Built app (`reflex run --env prod`, "
        f"SQLite), headless Chromium; {args.changes} status changes, each one signed webhook (delivered or read) "
        f"watched in two open pages (campaign detail and All Campaigns): {len(both)} measurements. "
        "Time from just before the POST to the DOM change (MutationObserver timestamp, no polling).",
        "",
        "| figure | target | median / p95 / max (s) | n |",
        "|---|---|---|---:|",
        f"| webhook → count changed, both pages | ≤ {TARGET_S:.0f} | {summary(both)} | {len(both)} |",
        f"| … campaign detail page | ≤ {TARGET_S:.0f} | {summary(result['live']['detail'])} | "
        f"{len(result['live']['detail'])} |",
        f"| … All Campaigns | ≤ {TARGET_S:.0f} | {summary(result['live']['list'])} | {len(result['live']['list'])} |",
        f"| baseline: webhook → counters committed in the DB (server floor) | — | {summary(result['floor'])} | "
        f"{len(result['floor'])} |",
        f"| baseline: webhook → count shown by reloading the page by hand | — | {summary(result['reload'])} | "
        f"{len(result['reload'])} |",
        "",
        f"Target ≤ {TARGET_S:.0f} s for every change: {verdict}. Live minus server floor (median): "
        f"{statistics.median(both) - statistics.median(result['floor']):.2f} s — the pages' poll interval "
        "(state/campaigns.py LIVE_INTERVAL_S) plus the websocket push and render. Reloads needed per change: "
        f"{', '.join(map(str, result['reload_count']))}.",
        "",
    ]
    report = "\n".join(lines)
    print()
    print(report)
    new = not RESULTS.exists()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with open(RESULTS, "a", encoding="utf-8") as out:
        if new:
            out.write("# Live status latency benchmark (bench/live_latency.py)\n\n")
        out.write(report + "\n")


if __name__ == "__main__":
    main()
