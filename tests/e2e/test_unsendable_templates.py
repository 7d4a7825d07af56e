"""Issue 12 point 1 in Chromium: a template Hubcast cannot fill (a carousel) says why on the Templates page and
in its detail, and the wizard's design step leaves it out of the template list, saying why; a LOCATION template
is offered and its four values are mapped like any variable. Template quality and WhatsApp's status reason
(issue 12 point 3) show on the same page.

The two templates are stored for the seeded Sandbox channel (the Sandbox's own `component_templates`) and
removed afterwards, with the campaign this module drafts, so other modules see the seed as it was."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import delete, select
from sqlmodel import Session

from app.db import make_engine
from app.models import Campaign, Channel, Template
from app.timeutil import utcnow
from app.whatsapp.sandbox.component_templates import component_templates

pytestmark = pytest.mark.e2e

NAMES = ("autumn_carousel", "store_visit")


@pytest.fixture(scope="module")
def stored(hubcast):
    engine = make_engine(hubcast.database_url)
    with Session(engine) as s:
        channel = s.exec(select(Channel).where(Channel.kind == "sandbox")).scalars().first()
        now = utcnow()
        for t in component_templates():
            if t["name"] in NAMES:
                s.add(
                    Template(
                        channel_id=channel.id,
                        name=t["name"],
                        language=t["language"],
                        category=t["category"],
                        status="APPROVED",
                        components=t["components"],
                        external_id=t["id"],
                        quality_score="YELLOW" if t["name"] == "store_visit" else "",
                        status_reason="Approved again by WhatsApp (reinstated)" if t["name"] == "store_visit" else "",
                        created_at=now,
                        updated_at=now,
                    )
                )
        s.commit()
        notice = "WhatsApp restricted this account: RESTRICTED_BIZ_INITIATED_MESSAGING. (06 Dec 2026 21:40 UTC)"
        before = (channel.quality_rating, channel.account_notice)
        channel.quality_rating, channel.account_notice = "FLAGGED", notice
        s.add(channel)
        s.commit()
        channel_id = channel.id
    yield
    with Session(engine) as s:
        channel = s.get(Channel, channel_id)
        channel.quality_rating, channel.account_notice = before
        s.add(channel)
        ids = s.exec(select(Template.id).where(Template.name.in_(NAMES))).scalars().all()
        s.execute(delete(Campaign).where(Campaign.template_id.in_(ids) | (Campaign.name == "Unsendable check")))
        s.execute(delete(Template).where(Template.id.in_(ids)))
        s.commit()
    engine.dispose()


def _pick(page, trigger: str, option: str) -> None:
    page.locator(trigger).click()
    page.get_by_role("option", name=option, exact=True).click()


def test_an_unfillable_template_says_why_and_the_wizard_never_offers_it(page, login_as, stored, shoot):
    login_as(page, "advanced")
    page.locator("#nav-templates").click()
    expect(page.locator("#page-title")).to_have_text("Templates")
    table = page.locator("#templates-table")
    carousel = table.locator("tbody tr").filter(has_text="autumn_carousel")
    expect(carousel.get_by_text("Can't send", exact=True)).to_be_visible()
    expect(carousel).to_contain_text("Hubcast cannot send this template: it has a carousel")
    visit = table.locator("tbody tr").filter(has_text="store_visit")
    expect(visit.get_by_text("Can't send", exact=True)).to_have_count(0)
    expect(visit.get_by_text("Medium", exact=True)).to_be_visible()  # quality YELLOW
    expect(visit).to_contain_text("Approved again by WhatsApp (reinstated)")
    shoot(page, "templates-unsendable-and-quality")

    table.get_by_text("autumn_carousel", exact=True).click()
    detail = page.get_by_role("dialog")
    expect(detail).to_contain_text("it has a carousel (each card needs its own media, variables and buttons)")
    shoot(page, "template-detail-unsendable")
    page.keyboard.press("Escape")
    expect(detail).to_have_count(0)

    page.locator("#nav-campaigns").click()
    page.locator("#start-campaign, #create-campaign").first.click()
    expect(page).to_have_url(re.compile(r"/campaigns/new$"))
    page.locator("#wizard-name").fill("Unsendable check")
    page.locator("#wizard-name").press("Tab")
    _pick(page, "#wizard-segment", "Australian customers")
    expect(page.locator("#wizard-summary-name")).to_have_text("Australian customers")
    page.locator("#wizard-next").click()

    note = page.locator("#wizard-unfillable-templates")
    expect(note).to_contain_text("Approved but not offered")
    expect(note).to_contain_text("autumn_carousel · en_US")
    expect(note).to_contain_text("it has a carousel")
    page.locator("#wizard-template").click()
    expect(page.get_by_role("option", name="store_visit · en_US", exact=True)).to_be_visible()
    expect(page.get_by_role("option", name="autumn_carousel · en_US")).to_have_count(0)
    page.get_by_role("option", name="store_visit · en_US", exact=True).click()
    for key in ("header.latitude", "header.longitude", "header.name", "header.address"):
        expect(page.locator(f'[id="wizard-var-{key}"]')).to_be_visible()
    expect(page.get_by_text("the location's latitude", exact=True)).to_be_visible()
    shoot(page, "wizard-unfillable-templates")


def test_the_channels_page_shows_what_whatsapp_said_about_the_number(page, login_as, stored, shoot):
    login_as(page, "admin")
    page.locator("#nav-channels").click()
    expect(page.locator("#page-title")).to_have_text("Channels")
    row = page.locator("#channels-table tbody tr").filter(has_text="Sandbox")
    expect(row.get_by_text("Quality: FLAGGED", exact=True)).to_be_visible()
    expect(row).to_contain_text("WhatsApp restricted this account: RESTRICTED_BIZ_INITIATED_MESSAGING.")
    shoot(page, "channels-quality-and-account-notice")
