"""The wizard survives its websocket dropping (a network blip, a web process restarted behind nginx).

On every (re)connect Reflex sends the page's on_load again (`hydrate_and_load`). The wizard's on_load used to
treat that as a fresh visit: it forgot the new campaign's draft (its address is still /campaigns/new until
"Next"), so the next change created a second draft, and it reset the step's work on screen (the checked CSV
file's summary). Playwright sits on the page's websocket (`route_web_socket`), closes it the way a dropped
connection closes, and watches the server's frames on the new connection until the on_load's answer (it asks
the browser for its time zone) has arrived; then what the user had is still there.
"""

from __future__ import annotations

import re
import threading

from playwright.sync_api import expect
from sqlalchemy import func, select
from sqlmodel import Session

from app.models import Campaign
from tests.e2e.test_wizard import SEMICOLON_CSV, _db, _start

# load_wizard's last act is to ask the browser for its zone: once this reaches the browser, the reload ran.
ON_LOAD_DONE = "resolvedOptions"


class EventSocket:
    """The page's Reflex websocket, proxied: each connection's route, and the server frames it carried."""

    def __init__(self, page) -> None:
        self.routes: list = []
        self.frames: list[list[str]] = []
        self._lock = threading.Lock()
        page.route_web_socket(re.compile(r"/_event"), self._on_connect)

    def _on_connect(self, ws) -> None:
        server = ws.connect_to_server()
        with self._lock:
            frames: list[str] = []
            self.routes.append((ws, server))
            self.frames.append(frames)

        def to_page(message) -> None:
            frames.append(message if isinstance(message, str) else "")
            ws.send(message)

        server.on_message(to_page)

    def connections(self) -> int:
        with self._lock:
            return len(self.routes)

    def drop(self) -> None:
        """Close the current connection on both sides, as a dead network or a killed backend does."""
        ws, server = self.routes[-1]
        server.close()
        ws.close(code=1006, reason="dropped by the test")

    def current_frames(self) -> list[str]:
        with self._lock:
            return list(self.frames[-1]) if self.frames else []


def _drafts_named(hubcast, name: str) -> int:
    engine = _db(hubcast)
    try:
        with Session(engine) as session:
            return session.execute(select(func.count()).select_from(Campaign).where(Campaign.name == name)).scalar_one()
    finally:
        engine.dispose()


def test_a_dropped_connection_keeps_the_new_draft_and_the_checked_file(page, login_as, hubcast, tmp_path):
    socket = EventSocket(page)
    csv_file = tmp_path / "customers.csv"
    csv_file.write_text(SEMICOLON_CSV, encoding="utf-8")
    login_as(page, "advanced")

    _start(page, "Blip in the middle")
    page.locator("#wizard-audience-csv").click()
    page.locator("#wizard-csv input[type=file]").set_input_files(str(csv_file))
    expect(page.locator("#wizard-csv-rows")).to_have_text("6")
    expect(page.locator("#wizard-csv-invalid-table")).to_contain_text("not-a-phone")
    assert _drafts_named(hubcast, "Blip in the middle") == 1

    before = socket.connections()
    socket.drop()
    checks = 0
    while socket.connections() <= before or not any(ON_LOAD_DONE in f for f in socket.current_frames()):
        page.wait_for_timeout(100)  # Playwright delivers the route's events while the page waits
        checks += 1
        assert checks < 600, "the page reconnected and its on_load answered within 60 s"

    # Still the same draft, still the checked file's summary, still step 1.
    expect(page.locator("#wizard-name")).to_have_value("Blip in the middle")
    expect(page.locator("#wizard-csv-rows")).to_have_text("6")
    expect(page.locator("#wizard-csv-invalid-table")).to_contain_text("not-a-phone")
    expect(page.locator("#wizard-summary-reach")).to_have_text("3")
    # Going on saves into the same draft: no second campaign appears.
    page.locator("#wizard-next").click()
    expect(page).to_have_url(re.compile(r"/campaigns/\d+/edit$"))
    expect(page.locator("#wizard-template")).to_be_visible()
    assert _drafts_named(hubcast, "Blip in the middle") == 1
