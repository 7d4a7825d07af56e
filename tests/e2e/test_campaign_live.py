"""Live status: signed webhooks posted to the running app change the counts in an open page, no reload.

The campaign and its recipients are written straight into the e2e server's database (the sending
engine is not what this tests), then statuses arrive the way Meta posts them. The campaign is removed
afterwards: the other e2e modules expect the seed's empty campaign list."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import delete, text
from sqlmodel import Session

from app.db import make_engine
from app.models import Campaign, CampaignRecipient, Channel, WebhookStatusEvent
from app.services.sending import progress as campaign_progress
from tests.support.webhook_payloads import envelope, post_signed_over_http

pytestmark = pytest.mark.e2e

SECRET, PNID = "e2e-live-app-secret", "e2e-live-pnid"
N = 20


@pytest.fixture()
def live_campaign(hubcast):
    engine = make_engine(hubcast.database_url)
    with Session(engine, expire_on_commit=False) as s:
        channel = Channel(name="E2E live channel", kind="whatsapp_cloud", phone_number_id=PNID, status="connected")
        s.add(channel)
        s.commit()
        # Stored as plain text on purpose: the server seals with its own key, which this process does not
        # have; an unsealed legacy value is read as is (app.secret_box).
        s.execute(text("UPDATE channels SET app_secret = :v WHERE id = :id"), {"v": SECRET, "id": channel.id})
        campaign = Campaign(name="Live launch", status="sending", channel_id=channel.id)
        s.add(campaign)
        s.commit()
        s.add_all(
            [
                CampaignRecipient(
                    campaign_id=campaign.id,
                    address=f"+3361234{i:04d}",
                    status="sent",
                    message_id=f"wamid.e2e.{campaign.id}.{i}",
                )
                for i in range(N)
            ]
        )
        s.commit()
        campaign_progress.refresh_counters(s, campaign.id)
        s.commit()
    try:
        yield campaign.id
    finally:
        with Session(engine) as s:
            s.execute(delete(WebhookStatusEvent).where(WebhookStatusEvent.channel_id == channel.id))
            s.execute(delete(CampaignRecipient).where(CampaignRecipient.campaign_id == campaign.id))
            s.execute(delete(Campaign).where(Campaign.id == campaign.id))
            s.execute(delete(Channel).where(Channel.id == channel.id))
            s.commit()
        engine.dispose()


def post_statuses(hubcast, items: list[dict]) -> None:
    payload = envelope(items, pnid=PNID)
    response = post_signed_over_http(hubcast.base_url, payload, SECRET)
    assert response.status_code == 200, response.text


def status(cid: int, i: int, st: str, **extra) -> dict:
    return {"id": f"wamid.e2e.{cid}.{i}", "status": st, "timestamp": "1764000000", "recipient_id": "3361234", **extra}


def test_counts_change_without_reload_on_the_list_and_the_detail_page(page, login_as, hubcast, live_campaign, shoot):
    cid = live_campaign
    login_as(page, "basic")
    row = page.locator(f"#campaign-row-{cid}")
    expect(row).to_be_visible()
    expect(page.locator(f"#campaign-{cid}-sent")).to_have_text(str(N))
    expect(page.locator(f"#campaign-{cid}-delivered")).to_have_text("0")
    expect(page.locator("#campaigns-live")).to_be_visible()
    page.evaluate("window.__same_document = true")  # survives only if the page is never reloaded

    post_statuses(
        hubcast,
        [status(cid, i, "delivered") for i in range(5)]
        + [status(cid, i, "read") for i in range(5, 8)]
        + [status(cid, i, "failed", errors=[{"code": 131026, "title": "Message undeliverable"}]) for i in (8, 9)],
    )
    # delivered includes read; sent includes both (funnel), failed ones left "sent".
    expect(page.locator(f"#campaign-{cid}-delivered")).to_have_text("8")
    expect(page.locator(f"#campaign-{cid}-read")).to_have_text("3")
    expect(page.locator(f"#campaign-{cid}-failed")).to_have_text("2")
    expect(page.locator(f"#campaign-{cid}-sent")).to_have_text(str(N - 2))
    assert page.evaluate("window.__same_document") is True
    shoot(page, "campaigns-live")

    page.locator(f"#campaign-link-{cid}").click()
    expect(page).to_have_url(re.compile(rf"/campaigns/{cid}/?$"))
    expect(page.locator("#campaign-name")).to_have_text("Live launch")
    expect(page.locator("#card-read")).to_have_text("3")
    expect(page.locator("#card-failed")).to_have_text("2")
    expect(page.locator("#recipients-table tbody tr")).to_have_count(N)
    expect(page.locator("#recipients-table")).to_contain_text("131026 · Message undeliverable")
    page.evaluate("window.__same_document = true")

    post_statuses(hubcast, [status(cid, i, "read") for i in range(0, 2)])
    expect(page.locator("#card-read")).to_have_text("5")
    expect(page.locator("#card-delivered")).to_have_text("8")
    assert page.evaluate("window.__same_document") is True

    page.locator("#recipient-status-filter").click()
    page.get_by_role("option", name="Failed", exact=True).click()  # the name users know (issue 15)
    expect(page.locator("#recipients-table tbody tr")).to_have_count(2)
    expect(page.locator("#recipients-table .recipient-status").first).to_have_text("Failed")
    shoot(page, "campaign-detail")

    # The export is a plain download checked on the server with the session cookie: every row, not the filter.
    with page.expect_download() as info:
        page.locator("#export-csv").click()
    lines = Path(info.value.path()).read_text(encoding="utf-8-sig").splitlines()
    assert lines[0].startswith("number,status,wamid,error_code,error_title")
    assert len(lines) == N + 1
    assert any(",failed,wamid.e2e." in line and "131026" in line for line in lines)
