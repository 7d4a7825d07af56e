"""Issue 15 leftovers in Chromium: the campaign page's replies paged on the server (newest first, 20 a page,
"Newer" / "Older", "x–y of N"), and a basic user who sends again to those who replied: the new draft keeps
its frozen file in step 1 (no upload offered), reaches Review and is sent.

The campaign and its replies are written to the database directly (as the webhook would record them, each
reply matched to its campaign), so the test needs no send of its own before the one the basic user makes."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import delete, select
from sqlmodel import Session

from app.db import make_engine
from app.models import Campaign, CampaignRecipient, InboundMessage, Template
from app.services.sending import progress as campaign_progress
from app.timeutil import utcnow
from tests.e2e.test_wizard import SEND_TIMEOUT_MS, _sandbox_channel
from tests.support.e2e import clear_campaigns
from tests.support.factories import MAPPING

pytestmark = pytest.mark.e2e

N_REPLIES = 45
WAMID = "wamid.e2e.replies-paging."


@pytest.fixture(scope="module")
def replied_campaign(hubcast):
    """A sent campaign of 45 numbers, every one of which replied (reply i at T0 + i minutes: 44 is newest)."""
    channel = _sandbox_channel(hubcast)
    t0 = utcnow().replace(microsecond=0) - timedelta(hours=3)
    engine = make_engine(hubcast.database_url)
    try:
        with Session(engine) as s:
            template = (
                s.execute(select(Template).where(Template.channel_id == channel.id, Template.name == "order_update"))
                .scalars()
                .first()
            )
            campaign = Campaign(
                name="Replies paging",
                status="sent",
                channel_id=channel.id,
                template_id=template.id,
                variable_mapping=dict(MAPPING),
                audience_kind="list",
                started_at=t0,
                finished_at=t0 + timedelta(minutes=2),
            )
            s.add(campaign)
            s.commit()
            cid = campaign.id
            # An earlier module's campaign may have had this id (SQLite reuses the largest one once deleted, and
            # clear_campaigns keeps inbound messages): its replies are not this campaign's.
            s.execute(delete(InboundMessage).where(InboundMessage.campaign_id == cid))
            s.commit()
            s.add_all(
                CampaignRecipient(
                    campaign_id=cid,
                    address=f"+336123470{i:02d}",
                    status="read",
                    message_id=f"{WAMID}{cid}.{i}",
                    variables={"body.1": f"Name{i}", "body.2": "#48213", "body.3": "Friday"},
                    sent_at=t0,
                    delivered_at=t0 + timedelta(seconds=5),
                    read_at=t0 + timedelta(seconds=30),
                    updated_at=t0 + timedelta(seconds=30),
                )
                for i in range(N_REPLIES)
            )
            s.add_all(
                InboundMessage(
                    channel_id=channel.id,
                    message_id=f"{WAMID}in.{cid}.{i}",
                    from_address=f"+336123470{i:02d}",
                    text=f"Reply number {i}",
                    context_message_id=f"{WAMID}{cid}.{i}",
                    campaign_id=cid,  # as record_inbound matches it
                    received_at=t0 + timedelta(minutes=10 + i),
                )
                for i in range(N_REPLIES)
            )
            s.commit()
            campaign_progress.refresh_counters(s, cid)
            s.commit()
        yield cid
    finally:
        with Session(engine) as s:
            s.execute(delete(InboundMessage).where(InboundMessage.message_id.like(f"{WAMID}%")))
            s.commit()
        engine.dispose()
        clear_campaigns(hubcast.database_url)


def _first_reply(replies):
    return replies.locator("#replies-table tbody tr").first


def test_replies_are_paged_newest_first_and_a_basic_user_sends_again(page, login_as, hubcast, shoot, replied_campaign):
    login_as(page, "basic")
    page.goto(f"{hubcast.base_url}/campaigns/{replied_campaign}")
    expect(page.locator("#campaign-name")).to_have_text("Replies paging")
    replies = page.get_by_role("region", name="Replies")
    newer = replies.get_by_role("button", name="Newer replies")
    older = replies.get_by_role("button", name="Older replies")
    rows = replies.locator("#replies-table tbody tr")

    expect(rows).to_have_count(20)
    expect(replies.locator("#replies-range")).to_have_text(f"1–20 of {N_REPLIES}")
    expect(_first_reply(replies)).to_contain_text("Reply number 44")  # newest first
    expect(newer).to_be_disabled()
    expect(older).to_be_enabled()
    shoot(page, "replies-paging-1")

    older.click()
    expect(replies.locator("#replies-range")).to_have_text(f"21–40 of {N_REPLIES}")
    expect(_first_reply(replies)).to_contain_text("Reply number 24")
    expect(rows).to_have_count(20)
    older.click()
    expect(replies.locator("#replies-range")).to_have_text(f"41–45 of {N_REPLIES}")
    expect(rows).to_have_count(5)
    expect(rows.last).to_contain_text("Reply number 0")
    expect(older).to_be_disabled()
    shoot(page, "replies-paging-3")
    newer.click()
    expect(replies.locator("#replies-range")).to_have_text(f"21–40 of {N_REPLIES}")
    expect(_first_reply(replies)).to_contain_text("Reply number 24")

    # "Send again to…" is there for a basic user: those who replied, as a new draft.
    again = page.get_by_role("region", name="Send again to…")
    again.get_by_role("combobox", name="Send again to").click()
    page.get_by_role("option", name="Replied", exact=True).click()
    expect(again.locator("#send-again-count")).to_have_text(f"{N_REPLIES} recipients")
    again.get_by_role("button", name="Create draft").click()
    expect(page).to_have_url(re.compile(r"/campaigns/(\d+)/edit$"))
    new_id = int(re.search(r"/campaigns/(\d+)/edit$", page.url).group(1))
    expect(page.locator("#wizard-template")).to_contain_text("order_update")

    # Back to step 1: the frozen copy is the audience, kept as it is; no file upload is offered.
    page.locator("#wizard-previous").click()
    derived = page.get_by_role("radio", name="Recipients of an earlier campaign")
    expect(derived).to_be_checked()
    expect(page.locator("#wizard-derived-file")).to_be_visible()
    expect(page.locator("#wizard-csv")).to_have_count(0)
    expect(page.locator("#wizard-summary-reach")).to_have_text(str(N_REPLIES))
    shoot(page, "replies-send-again-basic-step-1")
    page.locator("#wizard-next").click()
    expect(page.locator("#wizard-template")).to_contain_text("order_update")
    page.locator("#wizard-next").click()
    expect(page.locator("#wizard-send")).to_be_enabled()
    shoot(page, "replies-send-again-basic-review")
    page.locator("#wizard-send").click()
    page.locator("#wizard-send-confirm").click()
    expect(page).to_have_url(re.compile(r"/campaigns/?$"), timeout=SEND_TIMEOUT_MS)

    engine = make_engine(hubcast.database_url)
    try:
        with Session(engine) as s:
            sent = s.get(Campaign, new_id)
            assert sent.status in ("sending", "sent"), sent.status
            numbers = s.execute(
                select(CampaignRecipient.address).where(CampaignRecipient.campaign_id == new_id)
            ).scalars()
            assert sorted(numbers) == [f"+336123470{i:02d}" for i in range(N_REPLIES)]
    finally:
        engine.dispose()
