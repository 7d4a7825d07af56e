"""Issue 12 in the browser: the review step counts the daily messaging limit before sending, and the campaign
page shows rows "waiting for quota" live (they disappear, without a reload, once sent).

Everything is written straight into the e2e server's database on a channel of its own (tier TIER_5), so the
shared seed data and the other e2e modules are untouched; it is removed afterwards."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import delete, update
from sqlmodel import Session

from app.db import make_engine
from app.domain.messaging_limits import QUOTA_WAIT_TITLE
from app.models import (
    Campaign,
    CampaignRecipient,
    Channel,
    Contact,
    ContactIdentity,
    ContactList,
    ListMembership,
    Template,
)
from app.services.sending import progress as campaign_progress
from app.timeutil import utcnow
from tests.support.factories import MAPPING, ORDER_UPDATE

pytestmark = pytest.mark.e2e


@pytest.fixture()
def limited_number(hubcast):
    engine = make_engine(hubcast.database_url)
    now = utcnow()
    made: dict[str, list] = {"contacts": [], "campaigns": []}
    with Session(engine, expire_on_commit=False) as s:
        channel = Channel(
            name="E2E limited number",
            kind="whatsapp_cloud",
            phone_number_id="e2e-quota-pnid",
            business_account_id="e2e-quota-waba",
            status="connected",
            messaging_limit_tier="TIER_5",
        )
        s.add(channel)
        s.commit()
        template = Template(
            channel_id=channel.id,
            name="order_update",
            language="en_US",
            category="UTILITY",
            status="APPROVED",
            components=ORDER_UPDATE,
        )
        clist = ContactList(name="E2E quota audience")
        s.add_all([template, clist])
        s.commit()
        for i in range(8):
            contact = Contact(first_name=f"Quinn{i}", country="FR")
            s.add(contact)
            s.flush()
            s.add(ContactIdentity(contact_id=contact.id, channel_type="whatsapp", address=f"+3361299{i:04d}"))
            s.add(ListMembership(list_id=clist.id, contact_id=contact.id))
            made["contacts"].append(contact.id)
        held = Campaign(name="Held by the limit", status="sending", channel_id=channel.id, template_id=template.id)
        draft = Campaign(
            name="Quota review",
            status="draft",
            wizard_step=3,
            audience_kind="list",
            audience_list_id=clist.id,
            channel_id=channel.id,
            template_id=template.id,
            variable_mapping=MAPPING,
        )
        s.add_all([held, draft])
        s.commit()
        made["campaigns"] = [held.id, draft.id]
        # 3 people messaged within the window (2 of the tier's 5 left), 4 rows waiting for quota
        s.add_all(
            [
                CampaignRecipient(
                    campaign_id=held.id,
                    address=f"+3361288{i:04d}",
                    status="sent",
                    message_id=f"wamid.q.{i}",
                    sent_at=now,
                )
                for i in range(3)
            ]
            + [
                CampaignRecipient(
                    campaign_id=held.id,
                    address=f"+3361277{i:04d}",
                    status="queued",
                    next_attempt_at=now + timedelta(hours=1),
                    error_title=QUOTA_WAIT_TITLE,
                )
                for i in range(4)
            ]
        )
        s.commit()
        campaign_progress.refresh_counters(s, held.id)
        s.commit()
    try:
        yield {"engine": engine, "held": held.id, "draft": draft.id}
    finally:
        with Session(engine) as s:
            for cid in made["campaigns"]:
                s.execute(delete(CampaignRecipient).where(CampaignRecipient.campaign_id == cid))
                s.execute(delete(Campaign).where(Campaign.id == cid))
            s.execute(delete(ListMembership).where(ListMembership.list_id == clist.id))
            s.execute(delete(ContactList).where(ContactList.id == clist.id))
            s.execute(delete(ContactIdentity).where(ContactIdentity.contact_id.in_(made["contacts"])))
            s.execute(delete(Contact).where(Contact.id.in_(made["contacts"])))
            s.execute(delete(Template).where(Template.id == template.id))
            s.execute(delete(Channel).where(Channel.id == channel.id))
            s.commit()
        engine.dispose()


def test_review_counts_the_quota_and_the_campaign_page_shows_rows_waiting_live(
    page, login_as, hubcast, limited_number, shoot
):
    login_as(page, "basic")
    page.goto(f"{hubcast.base_url}/campaigns/{limited_number['draft']}/edit")
    quota = page.locator("#wizard-review-quota")
    expect(quota).to_contain_text("needs 8 new conversation(s); your number has 2 left in the next 24 h")
    expect(quota).to_contain_text("5 people per 24 h")
    expect(page.locator("#wizard-review-quota-wait")).to_contain_text(
        "6 message(s) will wait for quota and be sent as the 24 h window frees"
    )
    shoot(page, "messaging-limit-review")

    page.goto(f"{hubcast.base_url}/campaigns/{limited_number['held']}")
    waiting = page.locator("#campaign-quota-wait")
    expect(waiting).to_contain_text("4 waiting for quota (daily messaging limit)")
    expect(page.get_by_text("Limited by WhatsApp")).to_be_visible()
    shoot(page, "messaging-limit-campaign-waiting")
    page.evaluate("window.__same_document = true")

    # the window frees: the engine sends the waiting rows (written here as it would store them)
    engine, held = limited_number["engine"], limited_number["held"]
    with Session(engine) as s:
        s.execute(
            update(CampaignRecipient)
            .where(CampaignRecipient.campaign_id == held, CampaignRecipient.status == "queued")
            .values(status="sent", error_title="", sent_at=utcnow(), next_attempt_at=None)
        )
        campaign_progress.refresh_counters(s, held)
        s.commit()
    expect(waiting).to_have_count(0)
    expect(page.locator("#card-sent")).to_have_text("7")
    assert page.evaluate("window.__same_document") is True
    shoot(page, "messaging-limit-campaign-released")
