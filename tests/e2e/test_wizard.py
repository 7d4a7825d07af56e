"""The campaign wizard in Chromium, as a marketer would click it (SPEC S9–S12, S16).

The e2e server runs no RQ worker nor scheduler, so a sent campaign is asserted Sending with its
audience frozen (the recipients count), and a scheduled one Scheduled; the sending engine has its own
tests. Campaigns made here are removed afterwards: other e2e modules expect the seed's empty list."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect
from sqlalchemy import delete, select
from sqlmodel import Session

from app.db import make_engine
from app.models import AudienceUpload, Campaign, CampaignRecipient

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def no_campaigns_left(hubcast):
    yield
    engine = make_engine(hubcast.database_url)
    with Session(engine) as s:
        s.execute(delete(CampaignRecipient))
        s.execute(delete(Campaign))
        s.execute(delete(AudienceUpload))
        s.commit()
    engine.dispose()


def _campaign(hubcast, name: str) -> Campaign | None:
    engine = make_engine(hubcast.database_url)
    try:
        with Session(engine) as s:
            return s.execute(select(Campaign).where(Campaign.name == name)).scalars().first()
    finally:
        engine.dispose()


def _pick(page, trigger: str, option: str) -> None:
    page.locator(trigger).click()
    page.get_by_role("option", name=option, exact=True).click()


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


def test_basic_user_schedules_a_campaign_to_a_segment(page, login_as, hubcast, shoot):
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
    expect(page.locator("#wizard-channel")).to_contain_text("Sandbox")  # the only connected channel, suggested
    expect(page.locator("#wizard-next")).to_be_enabled()
    shoot(page, "wizard-1-setup-segment")
    page.locator("#wizard-next").click()

    expect(page.locator("#wizard-template")).to_be_visible()
    expect(page.locator("#wizard-next")).to_be_disabled()
    _pick(page, "#wizard-template", "order_update · en_US")
    expect(page.locator("#wizard-problems")).to_contain_text("{{1}}")
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
    page.locator("#wizard-next").click()

    expect(page.locator("#wizard-review-name")).to_contain_text("Aussie spring")
    expect(page.locator("#wizard-review-audience")).to_contain_text("Segment: Australian customers")
    expect(page.locator("#wizard-review-message")).to_contain_text("order_update · en_US")
    shoot(page, "wizard-3-review")
    page.locator("#wizard-schedule").click()
    tz = "Asia/Tokyo"
    page.locator("#wizard-schedule-tz").click()
    page.get_by_role("option", name=tz, exact=True).click()
    local = datetime.now(ZoneInfo(tz)) + timedelta(minutes=2)
    page.locator("#wizard-schedule-date").fill(local.strftime("%Y-%m-%d"))
    page.locator("#wizard-schedule-time").fill(local.strftime("%H:%M"))
    expected_utc = local.replace(second=0, microsecond=0).astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%d %H:%M")
    expect(page.locator("#wizard-schedule-utc")).to_contain_text(f"{expected_utc} UTC")
    expect(page.get_by_text("All contacts receive the message at the same moment")).to_be_visible()
    shoot(page, "wizard-3-schedule")
    page.locator("#wizard-schedule-confirm").click()

    expect(page).to_have_url(re.compile(r"/campaigns/?$"))
    campaign = _campaign(hubcast, "Aussie spring")
    assert campaign is not None and campaign.status == "scheduled" and campaign.timezone == tz
    expect(page.locator(f"#campaign-row-{campaign.id}")).to_contain_text("scheduled")
    shoot(page, "wizard-4-list-scheduled")
    page.locator(f"#campaign-actions-{campaign.id}").click()
    page.locator(f"#campaign-cancel-{campaign.id}").click()
    expect(page.locator(f"#campaign-row-{campaign.id}")).to_contain_text("cancelled")
    shoot(page, "wizard-5-list-cancelled")


def test_advanced_user_imports_a_semicolon_csv_and_sends(page, login_as, hubcast, shoot, tmp_path):
    csv_file = tmp_path / "customers.csv"
    csv_file.write_text("phone;first_name;city\n+33612345678;Ana;Lyon\n+33612345679;Ben;Paris\n12;Bad;X\n"
                        "+33612345678;Dup;Lyon\nnot-a-phone;Bad2;Y\n", encoding="utf-8")
    login_as(page, "advanced")
    _start(page, "File launch")
    page.locator("#wizard-audience-csv").click()
    expect(page.locator("#wizard-consent")).to_be_visible()
    expect(page.locator("#wizard-download-template")).to_be_visible()
    with page.expect_download() as download:
        page.locator("#wizard-download-template").click()
    assert download.value.suggested_filename.endswith(".csv")
    page.locator("#wizard-csv input[type=file]").set_input_files(str(csv_file))
    expect(page.locator("#wizard-csv-rows")).to_have_text("5")
    expect(page.locator("#wizard-csv-reach")).to_have_text("2")
    expect(page.locator("#wizard-csv-invalid")).to_have_text("2")
    expect(page.locator("#wizard-csv-duplicates")).to_have_text("1")
    expect(page.locator("#wizard-csv-delimiter")).to_contain_text("semicolon")
    expect(page.locator("#wizard-csv-columns")).to_have_text("phone, first_name, city")
    expect(page.locator("#wizard-csv-invalid-table")).to_contain_text("not-a-phone")
    expect(page.locator("#wizard-summary-reach")).to_have_text("2")
    shoot(page, "wizard-csv-summary")
    page.locator("#wizard-next").click()

    _pick(page, "#wizard-template", "order_update · en_US")
    _map(page, "body.1", "first_name")
    _map(page, "body.2", "The same text for everyone", "#777")
    _map(page, "body.3", "city")
    expect(page.locator("#wizard-preview-body")).to_contain_text("Hi Ana, your order #777")
    shoot(page, "wizard-csv-design")
    page.locator("#wizard-next").click()
    page.locator("#wizard-send").click()
    expect(page.locator("#wizard-send-reach")).to_have_text("2")
    shoot(page, "wizard-csv-send-confirm")
    page.locator("#wizard-send-confirm").click()

    expect(page).to_have_url(re.compile(r"/campaigns/?$"))
    campaign = _campaign(hubcast, "File launch")
    assert campaign is not None and campaign.status != "draft" and campaign.total_recipients == 2
    expect(page.locator(f"#campaign-recipients-{campaign.id}")).to_have_text("2")
    shoot(page, "wizard-csv-list-sending")


def test_draft_is_resumed_then_duplicated_and_deleted(page, login_as, hubcast, shoot):
    login_as(page, "basic")
    _start(page, "Resume me")
    page.locator("#wizard-audience-list").click()
    _pick(page, "#wizard-list", "VIP customers")
    page.locator("#wizard-next").click()
    expect(page.locator("#wizard-template")).to_be_visible()
    page.locator("#wizard-back").click()

    draft = _campaign(hubcast, "Resume me")
    assert draft is not None and draft.status == "draft" and draft.wizard_step == 2
    row = page.locator(f"#campaign-row-{draft.id}")
    expect(row).to_contain_text("draft")
    shoot(page, "wizard-list-draft")
    page.locator(f"#campaign-link-{draft.id}").click()
    expect(page).to_have_url(re.compile(rf"/campaigns/{draft.id}/edit$"))
    expect(page.locator("#wizard-template")).to_be_visible()  # resumed at step 2
    page.locator("#wizard-previous").click()
    expect(page.locator("#wizard-list")).to_contain_text("VIP customers")
    shoot(page, "wizard-resumed")
    page.locator("#wizard-back").click()

    page.locator(f"#campaign-actions-{draft.id}").click()
    page.locator(f"#campaign-duplicate-{draft.id}").click()
    expect(page.locator("#campaigns-table")).to_contain_text("Copy of Resume me")
    copy = _campaign(hubcast, "Copy of Resume me")
    assert copy is not None and copy.audience_list_id == draft.audience_list_id
    shoot(page, "wizard-duplicated")
    page.locator(f"#campaign-actions-{copy.id}").click()
    page.locator(f"#campaign-delete-{copy.id}").click()
    expect(page.get_by_text("Delete this draft?")).to_be_visible()
    page.locator("#campaign-delete-confirm").click()
    expect(page.locator(f"#campaign-row-{copy.id}")).to_have_count(0)
    expect(page.locator(f"#campaign-row-{draft.id}")).to_be_visible()
    assert _campaign(hubcast, "Copy of Resume me") is None
    shoot(page, "wizard-deleted")


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
            s.execute(delete(Campaign))
            s.execute(delete(ContactList).where(ContactList.name == "Wizard-made list"))
            s.commit()
        engine.dispose()
