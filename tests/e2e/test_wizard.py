"""The campaign wizard in Chromium, as a marketer would click it (SPEC S9–S12, S16), end to end.

The e2e session runs a real RQ worker (scheduler included) and the real Sandbox behind the app (see
conftest), so a campaign sent or scheduled here really goes out: the list is watched changing status
and counts live (no reload: a marker set on `window` must survive), and the Sandbox's own log of
accepted sends is checked for exactly-once delivery. Every step is screenshotted into
test-artifacts/e2e/pages/. Campaigns made here are removed afterwards: other e2e modules expect the
seed's empty list."""

from __future__ import annotations

import re
from collections import Counter
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect
from sqlalchemy import delete, select, update
from sqlmodel import Session

from app.db import make_engine
from app.models import Campaign, CampaignRecipient, Channel
from tests.support.e2e import clear_campaigns

pytestmark = pytest.mark.e2e

SEND_TIMEOUT_MS = 120_000  # a whole campaign through the worker and the Sandbox on a loaded 2-core machine
SCHEDULE_TIMEOUT_MS = 200_000  # the chosen minute is at most 2 minutes away, plus the scheduler's tick
# 6 rows: 3 reachable, 2 invalid (a short number, text), 1 duplicate; ";" as the delimiter.
SEMICOLON_CSV = (
    "phone;first_name;city\n+33612345678;Ana;Lyon\n+33612345679;Ben;Paris\n12;Bad;X\n"
    "+33612345678;Dup;Lyon\nnot-a-phone;Bad2;Y\n+4915112345670;Carl;Berlin\n"
)


@pytest.fixture(autouse=True, scope="module")
def no_campaigns_left(hubcast):
    """Campaigns stay until the module ends: deleting recipients mid-module would let SQLite reuse their
    ids, and a late status webhook for a deleted recipient (it carries our recipient id) would then match
    the next campaign's row with that id."""
    yield
    clear_campaigns(hubcast.database_url)


# --- reading and tuning the back end ------------------------------------------------------------


def _db(hubcast):
    return make_engine(hubcast.database_url)


def _campaign(hubcast, name: str) -> Campaign | None:
    engine = _db(hubcast)
    try:
        with Session(engine) as s:
            return s.execute(select(Campaign).where(Campaign.name == name)).scalars().first()
    finally:
        engine.dispose()


def _sandbox_channel(hubcast) -> Channel:
    engine = _db(hubcast)
    try:
        with Session(engine, expire_on_commit=False) as s:
            return s.execute(select(Channel).where(Channel.kind == "sandbox").order_by(Channel.id)).scalars().first()
    finally:
        engine.dispose()


@contextmanager
def channel_rate(hubcast, mps: int):
    """The Sandbox channel's sending rate for one test: a low rate keeps a campaign Sending long enough for
    a person (and this test) to see it and pause it. The worker reads the rate when a send job starts."""
    engine = _db(hubcast)
    before = _sandbox_channel(hubcast).messages_per_second
    with engine.begin() as conn:
        conn.execute(update(Channel).where(Channel.kind == "sandbox").values(messages_per_second=mps))
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(update(Channel).where(Channel.kind == "sandbox").values(messages_per_second=before))
        engine.dispose()


@contextmanager
def sandbox_config(hubcast, **changes):
    """Change the running Sandbox through its admin API (the channel's own token), restored afterwards."""
    headers = {"Authorization": f"Bearer {_sandbox_channel(hubcast).access_token}"}
    before = httpx.get(f"{hubcast.sandbox_url}/_sandbox/config", headers=headers, timeout=10)
    assert before.status_code == 200, before.text
    saved = {k: before.json()["config"][k] for k in changes}
    r = httpx.post(f"{hubcast.sandbox_url}/_sandbox/config", headers=headers, json=changes, timeout=10)
    assert r.status_code == 200, r.text
    try:
        yield
    finally:
        httpx.post(f"{hubcast.sandbox_url}/_sandbox/config", headers=headers, json=saved, timeout=10)


def _recipients(hubcast, campaign_id: int) -> list[CampaignRecipient]:
    engine = _db(hubcast)
    try:
        with Session(engine) as s:
            return list(
                s.execute(select(CampaignRecipient).where(CampaignRecipient.campaign_id == campaign_id)).scalars()
            )
    finally:
        engine.dispose()


def _sends_for(hubcast, campaign_id: int) -> list[dict]:
    """The Sandbox's accepted sends that belong to this campaign: each send carries our recipient row id
    (`biz_opaque_callback_data` "hc:<campaign>:<row>"), and the number must be that recipient's."""
    numbers = {f"hc:{campaign_id}:{r.id}": _digits(r.address) for r in _recipients(hubcast, campaign_id)}
    return [
        e
        for e in hubcast.sandbox_entries()
        if numbers.get(str(e.get("biz_opaque_callback_data"))) == _digits(e["wa_id"])
    ]


def _digits(number: str) -> str:
    return re.sub(r"\D", "", str(number))


def _campaign_by_id(hubcast, campaign_id: int) -> Campaign:
    engine = _db(hubcast)
    try:
        with Session(engine) as s:
            return s.get(Campaign, campaign_id)
    finally:
        engine.dispose()


def _assert_sent_once(hubcast, campaign_id: int) -> int:
    """Every recipient with a WhatsApp message id was accepted by the Sandbox exactly once; returns how many."""
    sends = _sends_for(hubcast, campaign_id)
    per_recipient = Counter(e["biz_opaque_callback_data"] for e in sends)
    assert per_recipient and max(per_recipient.values()) == 1, per_recipient.most_common(3)
    rows = _recipients(hubcast, campaign_id)
    with_wamid = {r.message_id for r in rows if r.message_id}
    missing = [(r.address, r.status, r.message_id) for r in rows if r.message_id not in {e["wamid"] for e in sends}]
    assert {e["wamid"] for e in sends} == with_wamid, (
        len(sends),
        len(with_wamid),
        missing[:5],
        _campaign_by_id(hubcast, campaign_id).started_at,
    )
    return len(sends)


# --- clicking ---------------------------------------------------------------------------------


UI_RETRY_MS = 10_000


def _pick(page, trigger: str, option: str) -> None:
    """Open a select and choose an option. The step's lists can be rebuilt once while they open (the draft's
    view arrives after the step renders, on a loaded machine): pick again when the open list was replaced."""
    for attempt in range(3):
        page.locator(trigger).click()
        try:
            page.get_by_role("option", name=option, exact=True).click(timeout=UI_RETRY_MS)
            return
        except PlaywrightTimeout:
            if attempt == 2:
                raise
            page.keyboard.press("Escape")


def _var(page, key: str):
    return page.locator(f'[id="wizard-var-{key}"]')


def _fallback(page, key: str):
    return page.locator(f'[id="wizard-fallback-{key}"]')


def _map(page, key: str, option: str, text: str | None = None) -> None:
    _var(page, key).click()
    page.get_by_role("option", name=option, exact=True).click()
    expect(_var(page, key)).to_contain_text(option)
    if text is not None:
        _fallback(page, key).fill(text)
        _fallback(page, key).press("Tab")


def _start(page, name: str) -> None:
    page.locator("#start-campaign, #create-campaign").first.click()
    expect(page).to_have_url(re.compile(r"/campaigns/new$"))
    expect(page.locator("#wizard-step-1")).to_contain_text("Campaign setup")
    page.locator("#wizard-name").fill(name)
    page.locator("#wizard-name").press("Tab")


def _design_order_update(page) -> None:
    expect(page.locator("#wizard-template")).to_be_visible()
    _pick(page, "#wizard-template", "order_update · en_US")
    _map(page, "body.1", "first_name", "friend")
    _map(page, "body.2", "The same text for everyone", "#48213")
    _map(page, "body.3", "The same text for everyone", "Friday")
    expect(page.locator("#wizard-next")).to_be_enabled()


def _to_review(page, name: str, kind: str, audience: str) -> None:
    """A whole campaign through steps 1 and 2, to the review step (the short path other tests share)."""
    _start(page, name)
    if kind == "list":
        page.locator("#wizard-audience-list").click()
        _pick(page, "#wizard-list", audience)
    else:
        _pick(page, "#wizard-segment", audience)
    expect(page.locator("#wizard-summary-name")).to_have_text(audience)
    page.locator("#wizard-next").click()
    _design_order_update(page)
    page.locator("#wizard-next").click()
    expect(page.locator("#wizard-review-name")).to_contain_text(name)


def _row_action(page, campaign_id: int, action: str) -> None:
    page.locator(f"#campaign-actions-{campaign_id}").click()
    page.locator(f"#campaign-{action}-{campaign_id}").click()


def _status(page, campaign_id: int):
    """The status badge of a row on All Campaigns (the first cell after the name)."""
    return page.locator(f"#campaign-row-{campaign_id} td").first


def _mark_document(page) -> None:
    page.evaluate("window.__same_document = true")  # survives only if the page is never reloaded


def _same_document(page) -> bool:
    return page.evaluate("window.__same_document === true")


# --- tests ------------------------------------------------------------------------------------


def test_basic_user_schedules_a_campaign_to_a_segment_in_another_time_zone(new_page, login_as, hubcast, shoot):
    page = new_page(timezone_id="Europe/Paris")
    login_as(page, "basic")
    _start(page, "Aussie spring")
    expect(page.locator("#wizard-audience-csv")).to_have_count(0)  # basic users use existing audiences
    expect(page.locator("#wizard-create-segment")).to_have_count(0)
    expect(page.locator("#wizard-next")).to_be_disabled()
    expect(page.locator("#wizard-problems")).to_contain_text("Choose the audience.")
    shoot(page, "wizard-1-setup-empty")
    _pick(page, "#wizard-segment", "Australian customers")
    expect(page.locator("#wizard-summary-name")).to_have_text("Australian customers")
    expect(page.locator("#wizard-summary-reach")).not_to_have_text("0")
    reach = int(page.locator("#wizard-summary-reach").inner_text())
    expect(page.locator("#wizard-channel")).to_contain_text("Sandbox")  # the only connected channel, suggested
    expect(page.locator("#wizard-next")).to_be_enabled()
    shoot(page, "wizard-1-setup-segment")
    page.locator("#wizard-next").click()

    expect(page.locator("#wizard-template")).to_be_visible()
    expect(page.locator("#wizard-next")).to_be_disabled()
    _pick(page, "#wizard-template", "order_update · en_US")
    expect(page.locator("#wizard-problems")).to_contain_text("{{1}}")
    shoot(page, "wizard-2-design-unmapped")
    _map(page, "body.1", "first_name", "friend")
    _map(page, "body.2", "The same text for everyone", "#48213")
    _map(page, "body.3", "The same text for everyone", "Friday")
    expect(page.locator("#wizard-next")).to_be_enabled()
    body = page.locator("#wizard-preview-body")
    expect(body).to_contain_text("your order #48213 has shipped and should arrive by Friday")
    expect(page.locator("#wizard-preview-to")).to_contain_text("+")
    first = body.inner_text()
    expect(page.locator("#wizard-preview-position")).to_have_text(re.compile(r"^1 / \d+$"))
    shoot(page, "wizard-2-design")
    page.locator("#wizard-preview-next").click()
    expect(page.locator("#wizard-preview-position")).to_have_text(re.compile(r"^2 / \d+$"))
    expect(body).not_to_have_text(first)  # another recipient's real name
    shoot(page, "wizard-2-design-second-recipient")
    page.locator("#wizard-next").click()

    expect(page.locator("#wizard-review-name")).to_contain_text("Aussie spring")
    expect(page.locator("#wizard-review-audience")).to_contain_text("Segment: Australian customers")
    expect(page.locator("#wizard-review-message")).to_contain_text("order_update · en_US")
    shoot(page, "wizard-3-review")
    page.locator("#wizard-schedule").click()
    expect(page.locator("#wizard-schedule-tz")).to_contain_text("Europe/Paris")  # the browser's own zone
    tz = "Asia/Tokyo"
    page.locator("#wizard-schedule-tz").click()
    page.get_by_role("option", name=tz, exact=True).click()
    expect(page.locator("#wizard-schedule-tz")).to_contain_text(tz)
    # A minute that is already past in Tokyo is refused (checked on the server, said in the dialog).
    past = datetime.now(ZoneInfo(tz)) - timedelta(minutes=5)
    page.locator("#wizard-schedule-date").fill(past.strftime("%Y-%m-%d"))
    page.locator("#wizard-schedule-time").fill(past.strftime("%H:%M"))
    expect(page.locator("#wizard-schedule-utc")).to_contain_text("in the past")
    # The next whole minute, unless it is too close to reach before the click (then the one after): the
    # campaign fires 0-80 s from now, not the 60-120 s a plain "+2 minutes" waits.
    now = datetime.now(ZoneInfo(tz))
    local = now + timedelta(minutes=1 if now.second < 40 else 2)
    page.locator("#wizard-schedule-date").fill(local.strftime("%Y-%m-%d"))
    page.locator("#wizard-schedule-time").fill(local.strftime("%H:%M"))
    instant = local.replace(second=0, microsecond=0)
    expect(page.locator("#wizard-schedule-utc")).to_contain_text(
        f"{instant.astimezone(ZoneInfo('UTC')):%Y-%m-%d %H:%M} UTC"
    )
    expect(page.locator("#wizard-schedule-utc")).not_to_contain_text("in the past")
    # ... and in the user's own zone (the browser's), since the chosen zone is not theirs.
    expect(page.locator("#wizard-schedule-utc")).to_contain_text(
        f"{instant.astimezone(ZoneInfo('Europe/Paris')):%Y-%m-%d %H:%M} Europe/Paris, your time zone"
    )
    expect(page.get_by_text("All contacts receive the message at the same moment")).to_be_visible()
    shoot(page, "wizard-3-schedule")

    # Slow enough that "Sending" lasts a few seconds of the live list, fast enough to finish soon.
    with channel_rate(hubcast, max(1, reach // 8)):
        page.locator("#wizard-schedule-confirm").click()
        expect(page).to_have_url(re.compile(r"/campaigns/?$"))
        campaign = _campaign(hubcast, "Aussie spring")
        assert campaign is not None and campaign.status == "scheduled" and campaign.timezone == tz
        assert campaign.scheduled_at.replace(tzinfo=UTC) == instant.astimezone(UTC)
        status = _status(page, campaign.id)
        expect(status).to_have_text("Scheduled")
        expect(page.locator(f"#campaign-recipients-{campaign.id}")).to_have_text("—")  # not frozen yet
        shoot(page, "wizard-4-list-scheduled")
        _mark_document(page)

        expect(status).to_have_text("Sending", timeout=SCHEDULE_TIMEOUT_MS)
        shoot(page, "wizard-5-list-sending")
        expect(status).to_have_text("Sent", timeout=SEND_TIMEOUT_MS)
    assert _same_document(page)
    expect(page.locator(f"#campaign-recipients-{campaign.id}")).to_have_text(str(reach))
    shoot(page, "wizard-6-list-sent")
    assert _assert_sent_once(hubcast, campaign.id) == reach


def test_advanced_user_imports_a_semicolon_csv_sends_now_and_watches_it_read(page, login_as, hubcast, shoot, tmp_path):
    csv_file = tmp_path / "customers.csv"
    csv_file.write_text(SEMICOLON_CSV, encoding="utf-8")
    login_as(page, "advanced")
    _start(page, "File launch")
    page.locator("#wizard-audience-csv").click()
    expect(page.locator("#wizard-consent")).to_be_visible()
    expect(page.locator("#wizard-download-template")).to_be_visible()
    shoot(page, "wizard-csv-1-empty")
    with page.expect_download() as download:
        page.locator("#wizard-download-template").click()
    assert download.value.suggested_filename.endswith(".csv")
    page.locator("#wizard-csv input[type=file]").set_input_files(str(csv_file))
    expect(page.locator("#wizard-csv-rows")).to_have_text("6")
    expect(page.locator("#wizard-csv-reach")).to_have_text("3")
    expect(page.locator("#wizard-csv-invalid")).to_have_text("2")
    expect(page.locator("#wizard-csv-duplicates")).to_have_text("1")
    expect(page.locator("#wizard-csv-delimiter")).to_contain_text("semicolon")
    expect(page.locator("#wizard-csv-columns")).to_have_text("phone, first_name, city")
    expect(page.locator("#wizard-csv-invalid-table")).to_contain_text("not-a-phone")
    expect(page.locator("#wizard-summary-reach")).to_have_text("3")
    shoot(page, "wizard-csv-2-summary")
    page.locator("#wizard-next").click()

    _pick(page, "#wizard-template", "order_update · en_US")
    _map(page, "body.1", "first_name")
    _map(page, "body.2", "The same text for everyone", "#777")
    _map(page, "body.3", "city")  # a CSV column
    expect(page.locator("#wizard-preview-body")).to_contain_text("Hi Ana, your order #777")
    expect(page.locator("#wizard-preview-body")).to_contain_text("arrive by Lyon")
    shoot(page, "wizard-csv-3-design")
    # "Send a test message": through the real sending path to one number, not counted in the campaign.
    test_number = "+33698765432"
    page.locator("#test-send-number").fill(test_number)
    page.locator("#test-send-button").click()
    expect(page.locator("#test-send-result")).to_contain_text("Test sent to")
    expect(page.locator("#test-send-result")).to_contain_text("not counted in the campaign")
    assert [e["template"] for e in hubcast.sandbox_entries() if _digits(e["wa_id"]) == _digits(test_number)] == [
        "order_update"
    ]
    shoot(page, "wizard-csv-3-design-test-sent")
    page.locator("#wizard-next").click()
    expect(page.locator("#wizard-review-audience")).to_contain_text("customers.csv")
    shoot(page, "wizard-csv-4-review")
    page.locator("#wizard-send").click()
    expect(page.locator("#wizard-send-reach")).to_have_text("3")
    shoot(page, "wizard-csv-5-send-confirm")

    # Every message read, quickly: the counts must rise through delivered to read on the open list.
    with sandbox_config(hubcast, read_ratio=1.0, delivered_delay=[0.5, 1.0], read_delay=[1.0, 2.0]):
        page.locator("#wizard-send-confirm").click()
        expect(page).to_have_url(re.compile(r"/campaigns/?$"))
        _mark_document(page)
        campaign = _campaign(hubcast, "File launch")
        assert campaign is not None and campaign.status != "draft" and campaign.total_recipients == 3
        expect(page.locator(f"#campaign-recipients-{campaign.id}")).to_have_text("3")
        shoot(page, "wizard-csv-6-list-sending")
        expect(page.locator(f"#campaign-{campaign.id}-delivered")).to_have_text("3", timeout=SEND_TIMEOUT_MS)
        expect(page.locator(f"#campaign-{campaign.id}-read")).to_have_text("3", timeout=SEND_TIMEOUT_MS)
    expect(_status(page, campaign.id)).to_have_text("Sent")
    expect(page.locator(f"#campaign-{campaign.id}-failed")).to_have_text("0")
    assert _same_document(page)
    shoot(page, "wizard-csv-7-list-read")
    assert _assert_sent_once(hubcast, campaign.id) == 3
    sent_to = {_digits(e["wa_id"]) for e in _sends_for(hubcast, campaign.id)}
    assert sent_to == {"33612345678", "33612345679", "4915112345670"}


def test_draft_is_resumed_at_its_last_step_then_duplicated_and_deleted(page, login_as, hubcast, shoot):
    login_as(page, "basic")
    _start(page, "Resume me")
    page.locator("#wizard-audience-list").click()
    _pick(page, "#wizard-list", "VIP customers")
    page.locator("#wizard-next").click()
    expect(page.locator("#wizard-template")).to_be_visible()
    page.locator("#wizard-back").click()

    draft = _campaign(hubcast, "Resume me")
    assert draft is not None and draft.status == "draft" and draft.wizard_step == 2
    expect(_status(page, draft.id)).to_have_text("Draft")
    shoot(page, "wizard-draft-1-list")
    page.locator(f"#campaign-link-{draft.id}").click()
    expect(page).to_have_url(re.compile(rf"/campaigns/{draft.id}/edit$"))
    expect(page.locator("#wizard-template")).to_be_visible()  # resumed at step 2
    shoot(page, "wizard-draft-2-resumed-at-design")
    page.locator("#wizard-previous").click()
    expect(page.locator("#wizard-list")).to_contain_text("VIP customers")
    expect(page.locator("#wizard-name")).to_have_value("Resume me")
    shoot(page, "wizard-draft-3-setup-kept")
    page.locator("#wizard-back").click()

    _row_action(page, draft.id, "duplicate")
    expect(page.locator("#campaigns-table")).to_contain_text("Copy of Resume me")
    copy = _campaign(hubcast, "Copy of Resume me")
    assert copy is not None and copy.status == "draft" and copy.audience_list_id == draft.audience_list_id
    shoot(page, "wizard-draft-4-duplicated")
    _row_action(page, copy.id, "delete")
    expect(page.get_by_text("Delete this draft?")).to_be_visible()
    shoot(page, "wizard-draft-5-delete-confirm")
    page.locator("#campaign-delete-confirm").click()
    expect(page.locator(f"#campaign-row-{copy.id}")).to_have_count(0)
    expect(page.locator(f"#campaign-row-{draft.id}")).to_be_visible()
    assert _campaign(hubcast, "Copy of Resume me") is None
    shoot(page, "wizard-draft-6-deleted")


def test_scheduled_campaign_is_rescheduled_duplicated_and_cancelled_from_the_list(new_page, login_as, hubcast, shoot):
    page = new_page(timezone_id="Europe/Paris")
    login_as(page, "basic")
    _to_review(page, "Autumn teaser", "list", "VIP customers")
    page.locator("#wizard-schedule").click()
    first = (datetime.now(ZoneInfo("Europe/Paris")) + timedelta(days=2)).replace(hour=10, minute=0)
    page.locator("#wizard-schedule-date").fill(first.strftime("%Y-%m-%d"))
    page.locator("#wizard-schedule-time").fill("10:00")
    expect(page.locator("#wizard-schedule-utc")).to_contain_text(f"{first.astimezone(UTC):%Y-%m-%d %H:%M} UTC")
    page.locator("#wizard-schedule-confirm").click()
    expect(page).to_have_url(re.compile(r"/campaigns/?$"))
    campaign = _campaign(hubcast, "Autumn teaser")
    assert campaign.status == "scheduled" and campaign.timezone == "Europe/Paris"
    status = _status(page, campaign.id)
    expect(status).to_have_text("Scheduled")
    shoot(page, "row-actions-1-scheduled")

    # Reschedule: a past time is refused and changes nothing; a future one in another zone moves the run time.
    _row_action(page, campaign.id, "reschedule")
    # It starts from the run time as chosen: 10:00 in Paris.
    expect(page.locator("#reschedule-tz")).to_contain_text("Europe/Paris")
    expect(page.locator("#reschedule-time")).to_have_value("10:00")
    expect(page.locator("#reschedule-note")).to_contain_text(f"{first.astimezone(UTC):%Y-%m-%d %H:%M} UTC")
    shoot(page, "row-actions-2-reschedule-opened")
    _pick(page, "#reschedule-tz", "America/New_York")
    yesterday = datetime.now(ZoneInfo("America/New_York")) - timedelta(days=1)
    page.locator("#reschedule-date").fill(yesterday.strftime("%Y-%m-%d"))
    page.locator("#reschedule-time").fill("09:30")
    expect(page.locator("#reschedule-note")).to_contain_text("this time is in the past")
    shoot(page, "row-actions-2-reschedule-past")
    page.locator("#reschedule-confirm").click()
    expect(page.locator("#reschedule-error")).to_have_text("Pick a time in the future.")
    shoot(page, "row-actions-3-reschedule-refused")
    assert _campaign_by_id(hubcast, campaign.id).scheduled_at == campaign.scheduled_at
    later = (datetime.now(ZoneInfo("America/New_York")) + timedelta(days=3)).replace(
        hour=9, minute=30, second=0, microsecond=0
    )
    page.locator("#reschedule-date").fill(later.strftime("%Y-%m-%d"))
    page.locator("#reschedule-time").fill("09:30")
    expect(page.locator("#reschedule-error")).to_have_count(0)  # a new choice clears the refusal
    expect(page.locator("#reschedule-note")).to_contain_text(f"{later.astimezone(UTC):%Y-%m-%d %H:%M} UTC")
    page.locator("#reschedule-confirm").click()
    expect(page.locator("#reschedule-confirm")).to_have_count(0)  # the dialog closed
    moved = _campaign_by_id(hubcast, campaign.id)
    assert moved.status == "scheduled" and moved.timezone == "America/New_York"
    assert moved.scheduled_at.replace(tzinfo=UTC) == later.astimezone(UTC)
    shoot(page, "row-actions-4-rescheduled")

    _row_action(page, campaign.id, "duplicate")
    expect(page.locator("#campaigns-table")).to_contain_text("Copy of Autumn teaser")
    copy = _campaign(hubcast, "Copy of Autumn teaser")
    assert copy.status == "draft" and copy.template_id == campaign.template_id and copy.scheduled_at is None
    expect(_status(page, copy.id)).to_have_text("Draft")
    shoot(page, "row-actions-5-duplicated")

    _row_action(page, campaign.id, "cancel")
    expect(status).to_have_text("Cancelled")
    assert _campaign_by_id(hubcast, campaign.id).status == "cancelled"
    assert _recipients(hubcast, campaign.id) == []  # it never started
    page.locator(f"#campaign-actions-{campaign.id}").click()
    expect(page.locator(f"#campaign-cancel-{campaign.id}")).to_have_count(0)  # nothing left to cancel
    expect(page.locator(f"#campaign-reschedule-{campaign.id}")).to_have_count(0)
    shoot(page, "row-actions-6-cancelled")
    page.keyboard.press("Escape")


def test_a_sending_campaign_is_paused_and_resumed_from_the_list_without_resending(page, login_as, hubcast, shoot):
    login_as(page, "advanced")
    _to_review(page, "Newsletter drop", "list", "Newsletter subscribers")
    page.locator("#wizard-send").click()
    reach = int(page.locator("#wizard-send-reach").inner_text())
    assert reach > 50
    with channel_rate(hubcast, max(2, reach // 25)):  # about 25 s of sending: time to pause it
        page.locator("#wizard-send-confirm").click()
        expect(page).to_have_url(re.compile(r"/campaigns/?$"))
        campaign = _campaign(hubcast, "Newsletter drop")
        status = _status(page, campaign.id)
        expect(status).to_have_text("Sending")
        expect(page.locator(f"#campaign-{campaign.id}-sent")).not_to_have_text("0", timeout=SEND_TIMEOUT_MS)
        shoot(page, "pause-1-sending")
        _row_action(page, campaign.id, "pause")
        expect(status).to_have_text("Paused")
        shoot(page, "pause-2-paused")

        # Messages already claimed when the pause came may still go out; after that, nothing does.
        def settled() -> int:
            counts = []
            for _ in range(3):
                counts.append(len(_sends_for(hubcast, campaign.id)))
                page.wait_for_timeout(1000)  # sampling the Sandbox's log while the campaign is paused
            return counts[-1] if len(set(counts)) == 1 else -1

        paused_at = -1
        for _ in range(10):
            paused_at = settled()
            if paused_at >= 0:
                break
        assert 0 < paused_at < reach, paused_at
        assert _campaign_by_id(hubcast, campaign.id).status == "paused"

        _row_action(page, campaign.id, "resume")
        expect(status).to_have_text("Sending")
        shoot(page, "pause-3-resumed")
        expect(status).to_have_text("Sent", timeout=SEND_TIMEOUT_MS)
    shoot(page, "pause-4-sent")
    sent = _assert_sent_once(hubcast, campaign.id)
    assert sent > paused_at
    done = _recipients(hubcast, campaign.id)
    assert len(done) == reach and not [r for r in done if r.status in ("queued", "sending")]


def test_create_new_list_comes_back_with_the_list_selected(page, login_as, hubcast, shoot):
    from app.models import ContactList

    login_as(page, "admin")
    _start(page, "With a new list")
    page.locator("#wizard-audience-list").click()
    expect(page.locator("#wizard-create-list")).to_be_visible()
    page.locator("#wizard-create-list").click()
    expect(page).to_have_url(re.compile(r"/lists\?return_to="))
    expect(page.locator("#lists-return-hint")).to_be_visible()
    page.locator("#create-list").click()
    page.locator("#list-name").fill("Wizard-made list")
    page.locator("#list-save").click()
    try:
        expect(page).to_have_url(re.compile(r"/campaigns/\d+/edit\?created_list=\d+$"))
        expect(page.locator("#wizard-list")).to_contain_text("Wizard-made list")
        expect(page.locator("#wizard-name")).to_have_value("With a new list")
        expect(page.locator("#wizard-summary-name")).to_have_text("Wizard-made list")
        shoot(page, "wizard-created-list")
    finally:
        engine = make_engine(hubcast.database_url)
        with Session(engine) as s:
            s.execute(delete(Campaign).where(Campaign.name == "With a new list"))
            s.execute(delete(ContactList).where(ContactList.name == "Wizard-made list"))
            s.commit()
        engine.dispose()
