"""The production topology on one box (tests/topology/harness.py), attacked the way production gets hurt.

nginx round-robin over two `hubcast web`, three `hubcast worker`, one Sandbox per channel, PostgreSQL and
Redis. Two browsers sign in through nginx; browser A sends campaign 1 from the wizard while campaign 2
starts on a second channel (each channel with its own cap). At 15% sent a worker is SIGKILLed and another
started. A then begins a third campaign in the wizard and saves its first step, and the web process A's
websocket is on is killed (SIGKILL, its whole process group): A reconnects through nginx to the other one with
its session and its wizard draft intact, both browsers see campaign 1's counts move, and the draft resumes from
its address to its review. Both campaigns complete. From the Sandboxes' logs: every recipient was accepted
exactly once, none lost, and each channel's busiest 1-second window stayed within 105% of its cap (125% on a
CPU-starved machine). /metrics (through nginx, with its token) agrees; the logs are JSON lines.

Sized for a loaded 2-core CI machine: by default 7,000 + 2,000 recipients at 200 and 100 msg/s (the issue's
20,000 at 500 msg/s is `HUBCAST_TOPOLOGY_N1=20000 HUBCAST_TOPOLOGY_CAP1=500`; bench/topology.py runs the
large figures). Skips when PostgreSQL or nginx is missing.
"""

from __future__ import annotations

import os
import re
import time

import httpx
import pytest
from playwright.sync_api import expect

from tests.support.load import PeakLoad
from tests.topology import harness

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

N1 = int(os.environ.get("HUBCAST_TOPOLOGY_N1", "7000"))
CAP1 = int(os.environ.get("HUBCAST_TOPOLOGY_CAP1", "200"))
N2 = int(os.environ.get("HUBCAST_TOPOLOGY_N2", "2000"))
CAP2 = int(os.environ.get("HUBCAST_TOPOLOGY_CAP2", "100"))
UI_MS = 30_000
ARTIFACTS = harness.PROJECT_ROOT / "test-artifacts" / "topology"


def _digits(text: str) -> int:
    found = re.sub(r"[^0-9]", "", text or "")
    return int(found) if found else 0


class Handshakes:
    """Which backend each websocket handshake of a page reached (nginx's X-Hubcast-Upstream), via CDP."""

    def __init__(self, context, page) -> None:
        self.upstreams: list[str] = []
        cdp = context.new_cdp_session(page)
        cdp.on("Network.webSocketHandshakeResponseReceived", self._on_handshake)
        cdp.send("Network.enable")
        self._cdp = cdp

    def _on_handshake(self, params: dict) -> None:
        headers = {k.lower(): v for k, v in (params.get("response", {}).get("headers") or {}).items()}
        if "x-hubcast-upstream" in headers:
            self.upstreams.append(headers["x-hubcast-upstream"])

    @property
    def current_port(self) -> int | None:
        return int(self.upstreams[-1].rsplit(":", 1)[1]) if self.upstreams else None


@pytest.fixture()
def topology(tmp_path, monkeypatch):
    root = ARTIFACTS
    if root.exists():
        for old in root.glob("*.log"):
            old.unlink()
    try:
        topo = harness.prepare(root)
    except harness.Unavailable as exc:
        pytest.skip(str(exc))
    # This test process seeds the database and starts campaign 2 through the services: same settings.
    from app import db as app_db
    from app import redis_conn
    from app.settings import reset_settings_cache

    for key in ("DATABASE_URL", "REDIS_URL", "HUBCAST_DATA_DIR", "HUBCAST_METRICS_TOKEN", "HUBCAST_SEND_LANES"):
        monkeypatch.setenv(key, topo.env[key])

    def reset():
        reset_settings_cache()
        app_db._engine_for.cache_clear()
        redis_conn.reset_redis_cache()

    reset()
    try:
        yield topo
    finally:
        topo.stop_all()
        with __import__("contextlib").suppress(Exception):
            app_db.get_engine().dispose()
        monkeypatch.undo()
        reset()


def _login(page, email: str, password: str) -> None:
    from tests.support.e2e import do_login

    do_login(page, email, password)
    expect(page.locator("#current-user-email")).to_have_text(email, timeout=UI_MS)


def _campaign(campaign_id: int):
    from tests.support.factories import campaign_row

    return campaign_row(campaign_id)


def test_two_webs_three_workers_behind_nginx_survive_a_web_and_a_worker_dying(topology, browser):
    from app.services.sending.lifecycle import start_campaign

    topo = topology
    started = time.monotonic()
    built_s = harness.ensure_frontend(topo.root / "build.log")
    migrate = __import__("subprocess").run(
        [__import__("sys").executable, "-m", "app.cli", "migrate"],
        cwd=harness.PROJECT_ROOT,
        env=topo.env,
        capture_output=True,
        text=True,
    )
    assert migrate.returncode == 0, migrate.stderr
    sandboxes = [harness.start_sandbox(topo, 0, CAP1), harness.start_sandbox(topo, 1, CAP2)]
    world = harness.seed(sandboxes, [N1, N2], [CAP1, CAP2])
    c1, c2 = (c.id for c in world["campaigns"])
    webs = [topo.web(0), topo.web(1)]
    for web in webs:
        topo.wait_web(web)
    harness.start_nginx(topo)
    # Rows a SIGKILLed worker had claimed stay `sending` for the sweeper's grace period (600 s by default,
    # far longer than any request); shortened here as in tests/hardening, so the test need not wait 10 min.
    topo.env.update(
        {"HUBCAST_SEND_STUCK_GRACE_S": "20", "HUBCAST_SEND_ALIVE_TTL_S": "15", "HUBCAST_SEND_TICK_INTERVAL_S": "1"}
    )
    workers = [topo.worker(f"worker{i + 1}") for i in range(3)]
    ready_s = time.monotonic() - started

    ctx_a = browser.new_context(base_url=topo.base_url, viewport={"width": 1440, "height": 900})
    ctx_b = browser.new_context(base_url=topo.base_url, viewport={"width": 1440, "height": 900})
    try:
        page_a, page_b = ctx_a.new_page(), ctx_b.new_page()
        for ctx in (ctx_a, ctx_b):
            ctx.set_default_timeout(UI_MS)
        shakes_a, shakes_b = Handshakes(ctx_a, page_a), Handshakes(ctx_b, page_b)
        _login(page_a, *harness.ADMIN)
        _login(page_b, *harness.BASIC)

        # Browser A sends campaign 1 from the wizard's review step; campaign 2 starts on the other channel.
        page_a.goto(f"/campaigns/{c1}/edit")
        expect(page_a.locator("#wizard-review-name")).to_contain_text("Topology 1", timeout=UI_MS)
        page_a.locator("#wizard-send").click()
        expect(page_a.locator("#wizard-send-reach")).to_have_text(re.compile(r"\d"), timeout=UI_MS)
        page_a.locator("#wizard-send-confirm").click()
        expect(page_a).to_have_url(re.compile(r"/campaigns/?$"), timeout=UI_MS)
        send_started = time.monotonic()
        load_during_send = PeakLoad().start()
        from sqlmodel import Session

        from app.db import get_engine

        with Session(get_engine()) as session:
            start_campaign(session=session, actor=world["admin"], campaign_id=c2)

        # Browser B watches All Campaigns: both campaigns' sent counts rise without a reload.
        page_b.goto("/campaigns")
        sent_b = page_b.locator(f"#campaign-{c1}-sent")
        harness.wait_for(lambda: _digits(sent_b.inner_text()) > 0, 90, "browser B sees campaign 1 sending")

        # A worker dies (SIGKILL) mid-campaign and another one starts.
        total = N1 + N2
        harness.wait_for(lambda: sum(s.total() for s in sandboxes) >= total * 0.15, 180, "15% of the messages sent")
        workers[0].kill()
        killed_worker_at = sum(s.total() for s in sandboxes)
        workers.append(topo.worker("worker4"))

        # Browser A begins campaign 3 in the wizard and saves step 1 (a draft): its state must outlive its backend.
        page_a.locator("#start-campaign, #create-campaign").first.click()
        expect(page_a.locator("#wizard-name")).to_be_visible()
        page_a.locator("#wizard-name").fill("Survives a dead backend")
        page_a.locator("#wizard-name").press("Tab")
        page_a.locator("#wizard-audience-list").click()
        page_a.locator("#wizard-list").click()
        page_a.get_by_role("option", name="Audience 2", exact=True).click()
        if page_a.locator("#wizard-channel").count():
            channel_box = page_a.locator("#wizard-channel")
            if "Line 2" not in channel_box.inner_text():
                channel_box.click()
                page_a.get_by_role("option", name=re.compile("Line 2")).first.click()
        expect(page_a.locator("#wizard-next")).to_be_enabled()
        page_a.locator("#wizard-next").click()
        expect(page_a.locator("#wizard-template")).to_be_visible(timeout=UI_MS)
        # The saved draft has its own address, so whichever backend reloads the page resumes it.
        expect(page_a).to_have_url(re.compile(r"/campaigns/\d+/edit$"), timeout=UI_MS)
        draft_url = page_a.url

        # Mid-send: kill (SIGKILL, whole process group) the web process A's websocket is on.
        page_a.wait_for_timeout(100)  # let Playwright deliver the handshake events received so far
        port_a = shakes_a.current_port
        assert port_a in topo.web_ports, shakes_a.upstreams
        victim = webs[topo.web_ports.index(port_a)]
        handshakes_before = len(shakes_a.upstreams)
        victim.kill()
        killed_web_at = sum(s.total() for s in sandboxes)
        assert killed_web_at < N1, "campaign 1 was still sending when the web process died"

        # A reconnects through nginx to the surviving backend, still signed in, its draft where it was.
        # (Playwright delivers the CDP events while it works: wait in the page, not in time.sleep.)
        harness.wait_for(
            lambda: (
                page_a.wait_for_timeout(200)
                or (len(shakes_a.upstreams) > handshakes_before and shakes_a.current_port != port_a)
            ),
            60,
            "browser A's websocket reconnected to the other backend",
            interval=0,
        )
        expect(page_a.locator("#current-user-email")).to_have_text(harness.ADMIN[0], timeout=UI_MS)
        assert page_a.url == draft_url
        expect(page_a.locator("#wizard-template")).to_be_visible(timeout=UI_MS)

        # Both browsers keep seeing live counts, checked at once while campaign 1's statuses still arrive (after
        # the wizard below, on a loaded CI machine, campaign 1 could be all delivered and nothing left to move):
        # A on campaign 1's page, served by the surviving backend; B on All Campaigns, never reloaded.
        seen_b = _digits(page_b.locator(f"#campaign-{c1}-delivered").inner_text())
        page_a.goto(f"/campaigns/{c1}")
        delivered_a = page_a.locator("#card-delivered")
        expect(page_a.locator("#campaign-name")).to_have_text("Topology 1", timeout=UI_MS)
        seen_a = harness.wait_for(
            lambda: page_a.wait_for_timeout(200) or _digits(delivered_a.inner_text()),
            30,
            "campaign 1's page loaded",
            interval=0,
        )
        delivered_in_db = _campaign(c1).delivered_count
        harness.wait_for(
            lambda: page_a.wait_for_timeout(300) or _digits(delivered_a.inner_text()) > seen_a,
            60,
            f"browser A sees campaign 1's delivered count move after the reconnect (page {seen_a}, "
            f"database {delivered_in_db} of {N1} when the page loaded)",
            interval=0,
        )
        harness.wait_for(
            lambda: (
                page_b.wait_for_timeout(300)
                or _digits(page_b.locator(f"#campaign-{c1}-delivered").inner_text()) > seen_b
            ),
            60,
            "browser B sees campaign 1's counts move after the kill",
            interval=0,
        )

        # A's draft resumes from its own address on the surviving backend: design it and review it.
        page_a.goto(draft_url)
        expect(page_a.locator("#wizard-template")).to_be_visible(timeout=UI_MS)
        page_a.locator("#wizard-template").click()
        page_a.get_by_role("option", name="order_update · en_US", exact=True).click()
        expect(page_a.locator('[id="wizard-var-body.1"]')).to_be_visible(timeout=UI_MS)
        for key, option, fallback in (
            ("body.1", "first_name", "friend"),
            ("body.2", "The same text for everyone", "#48213"),
            ("body.3", "The same text for everyone", "Friday"),
        ):
            page_a.locator(f'[id="wizard-var-{key}"]').click()
            page_a.get_by_role("option", name=option, exact=True).click()
            # The select shows the choice once the server has applied it; the text box beside it is rebuilt
            # then, so typing before that (a slow round trip) would be lost.
            expect(page_a.locator(f'[id="wizard-var-{key}"]')).to_have_text(option, timeout=UI_MS)
            page_a.locator(f'[id="wizard-fallback-{key}"]').fill(fallback)
            page_a.locator(f'[id="wizard-fallback-{key}"]').press("Tab")
        expect(page_a.locator("#wizard-next")).to_be_enabled()
        page_a.locator("#wizard-next").click()
        expect(page_a.locator("#wizard-review-name")).to_contain_text("Survives a dead backend", timeout=UI_MS)
        expect(page_a.locator("#wizard-review-audience")).to_contain_text("Audience 2")

        harness.wait_for(
            lambda: (
                _campaign(c1).status in ("sent", "failed", "paused")
                and _campaign(c2).status in ("sent", "failed", "paused")
            ),
            240,
            "both campaigns finished",
            interval=1.0,
        )
        wall_s = time.monotonic() - send_started
        load_during_send.stop()
        done1, done2 = _campaign(c1), _campaign(c2)
        assert (done1.status, done2.status) == ("sent", "sent"), (done1.pause_reason, done2.pause_reason)
        # Browser B, which never reloaded, shows campaign 1's deliveries as the surviving web process applies
        # the status webhooks (a backlog under load: reported, not awaited to the end, to bound the test's time).
        delivered_b = page_b.locator(f"#campaign-{c1}-delivered")
        with __import__("contextlib").suppress(AssertionError):
            harness.wait_for(
                lambda: page_b.wait_for_timeout(500) or _digits(delivered_b.inner_text()) >= N1,
                30,
                "browser B shows campaign 1 delivered",
                interval=0,
            )
        delivered_shown_b = _digits(delivered_b.inner_text())
    finally:
        for name, page in (("browser-a", locals().get("page_a")), ("browser-b", locals().get("page_b"))):
            if page is not None:
                with __import__("contextlib").suppress(Exception):
                    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        for ctx in (ctx_a, ctx_b):
            with __import__("contextlib").suppress(Exception):
                ctx.close()

    # Exactly once, none lost, each cap kept: from the Sandboxes' own logs.
    from tests.support.factories import recipients
    from tests.support.sandbox import max_per_window

    report = {
        "built_s": round(built_s, 1),
        "ready_s": round(ready_s, 1),
        "send_wall_s": round(wall_s, 1),
        "delivered_shown_in_b_at_end": delivered_shown_b,
        "killed_web_after": killed_web_at,
        "killed_worker_after": killed_worker_at,
    }
    for k, (sb, n, cap, cid) in enumerate(((sandboxes[0], N1, CAP1, c1), (sandboxes[1], N2, CAP2, c2))):
        log, entries = sb.summary(), sb.entries()
        rows = recipients(cid)
        statuses = {}
        for row in rows:
            statuses[row.status] = statuses.get(row.status, 0) + 1
        busiest, busiest_5s = max_per_window(entries, 1.0), max_per_window(entries, 5.0)
        report[f"channel{k + 1}"] = {
            "recipients": n,
            "accepted": log["total"],
            "distinct": len(log["per_recipient"]),
            "duplicates": len(log["duplicates"]),
            "busiest_1s": busiest,
            "busiest_5s": busiest_5s,
            "cap": cap,
            **load_during_send.describe(),
            "statuses": statuses,
        }
        accepted = set(log["per_recipient"])
        # `unknown`: a worker was SIGKILLed after marking the row "may have been posted" and before its answer
        # was stored. Never resent (WhatsApp has no idempotency key); settled by its webhook if it was sent.
        unknown_unsent = {r.address for r in rows if r.status == "unknown"} - accepted
        report[f"channel{k + 1}"]["unknown_never_sent"] = len(unknown_unsent)
        assert not log["duplicates"], f"channel {k + 1}: a recipient was sent twice"
        assert log["total"] == len(accepted), f"channel {k + 1}: {log['total']} sends to {len(accepted)} people"
        assert accepted | unknown_unsent == {r.address for r in rows} and len(rows) == n, (
            f"channel {k + 1}: recipients lost"
        )
        assert len(unknown_unsent) <= max(3, n // 1000), f"channel {k + 1}: {len(unknown_unsent)} left unknown"
        assert not statuses.get("queued") and not statuses.get("sending"), statuses
        # The limiter hands out at most cap x 0.985 tokens a second (GCRA, 10 ms burst). The Sandbox stamps a
        # send when its handler starts: on an overloaded machine (9 processes on 2 cores) its event loop, or a
        # worker's, stalls, then handles a queue of requests at once, which a sliding 1-s window reads as a
        # burst (seen: 23 stamped in 3 ms after a 190 ms silence, 212 in one second at a 200 cap, with the
        # 1-min load under 2 per core). So: the 1-s bound unless the load peaked above 2 per core or
        # some task waited for a CPU a tenth of a second during the send (PSI), a 5-s bound always.
        assert busiest_5s <= 5 * cap * 1.05, f"channel {k + 1}: {busiest_5s} sends in five seconds, cap {cap}/s"
        one_second_bound = load_during_send.one_second_bound()  # 1.5 when saturated (4+ tasks per core)
        assert busiest <= cap * one_second_bound, f"channel {k + 1}: {busiest} sends in one second, cap {cap}"

    # /metrics through nginx: refused without the token, and agreeing with the Sandboxes.
    assert httpx.get(f"{topo.base_url}/metrics", timeout=10).status_code == 401
    scraped = httpx.get(
        f"{topo.base_url}/metrics", headers={"Authorization": f"Bearer {harness.METRICS_TOKEN}"}, timeout=20
    )
    assert scraped.status_code == 200, scraped.text
    for k, (channel, n) in enumerate(zip(world["channels"], (N1, N2), strict=True)):
        labels = f'channel="{channel.name}",channel_id="{channel.id}",status="posted"'
        pattern = r"hubcast_messages_total\{" + re.escape(labels) + r"\} (\S+)"
        posted = float(re.search(pattern, scraped.text).group(1))
        report[f"channel{k + 1}"]["metrics_posted"] = posted
        # Counted when a batch of outcomes is stored (every 0.25 s, plus the store's own time), then written to
        # Redis: the SIGKILLed worker may have stored its last batch and died before counting it (up to about
        # a second of sends at the cap on a loaded machine: 52 of 7,000 missing was seen at a 200/s cap), and
        # rows it left `unknown` were never counted as posted. Never more than were sent.
        seen = report[f"channel{k + 1}"]
        unknown_rows = seen["statuses"].get("unknown", 0)
        assert n - seen["cap"] - unknown_rows <= posted <= n, (k, posted, unknown_rows)

    bad = harness.json_log_problems([w.log for w in workers] + [w.log for w in webs])
    report["non_json_log_lines"] = len(bad)
    print("topology:", report)
    (ARTIFACTS / "report.txt").write_text(repr(report) + "\n")
    assert not [b for b in bad if b.startswith("worker")], bad[:10]
