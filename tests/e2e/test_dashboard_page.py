"""The home dashboard and All Campaigns' sorting and filters (issue 15 §7, §8), as a user clicks.

Sent messages are written straight into the e2e server's database (a campaign sent today through a channel with
a known messaging tier and quality, a paused one, a draft, replies), as the sending engine and the webhooks
would leave them; the figures the page must show are what the dashboard service computes from that database
before and after, so the test holds whatever other e2e modules left behind. Everything is removed afterwards:
other modules expect the seed's empty campaign list."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import delete, select
from sqlmodel import Session

from app.db import make_engine
from app.models import Campaign, CampaignRecipient, Channel, InboundMessage, User
from app.services.campaigns import dashboard as dashboard_service

pytestmark = pytest.mark.e2e

AT_DASHBOARD = re.compile(r"/dashboard/?$")
AT_CAMPAIGNS = re.compile(r"/campaigns/?$")
# today's rows of "Dash: spring launch": 4 read, 3 delivered, 2 only sent, 1 refused at once (failed)
STATUSES = ["read"] * 4 + ["delivered"] * 3 + ["sent"] * 2 + ["failed"]


def _figures(engine, days: int):
    with Session(engine) as s:
        admin = s.execute(select(User).where(User.role == "admin")).scalars().first()
        return dashboard_service.dashboard(session=s, actor=admin, days=days)


@pytest.fixture()
def sent_data(hubcast):
    engine = make_engine(hubcast.database_url)
    before = _figures(engine, 7)
    now = datetime.now(UTC)
    with Session(engine, expire_on_commit=False) as s:
        channel = Channel(
            name="E2E dashboard line",
            kind="whatsapp_cloud",
            status="connected",
            phone_number_id="e2e-dash-pnid",
            display_phone_number="+33 6 12 00 00 00",
            messaging_limit_tier="TIER_10K",
            quality_rating="GREEN",
        )
        s.add(channel)
        s.commit()
        sent = Campaign(
            name="Dash: spring launch",
            status="sent",
            channel_id=channel.id,
            started_at=now - timedelta(minutes=30),
            finished_at=now - timedelta(minutes=20),
            total_recipients=len(STATUSES),
            sent_count=2,
            delivered_count=3,
            read_count=4,
            failed_count=1,
        )
        paused = Campaign(
            name="Dash: autumn promo",
            status="paused",
            channel_id=channel.id,
            pause_reason="WhatsApp refused the campaign: #131031 Business account locked",
            started_at=now - timedelta(minutes=10),
            total_recipients=40,
            queued_count=40,
        )
        draft = Campaign(name="Dash: winter idea", status="draft", channel_id=channel.id)
        s.add_all([sent, paused, draft])
        s.commit()
        at = now - timedelta(minutes=25)
        s.add_all(
            [
                CampaignRecipient(
                    campaign_id=sent.id,
                    address=f"+3361200{i:04d}",
                    status=st,
                    message_id=f"wamid.e2e.dash.{i}",
                    sent_at=None if st == "failed" else at,
                    failed_at=at if st == "failed" else None,
                )
                for i, st in enumerate(STATUSES)
            ]
        )
        s.add_all(
            [
                InboundMessage(
                    channel_id=channel.id,
                    message_id=f"wamid.e2e.dash.in{i}",
                    from_address="+33612000000",
                    text="Thanks!",
                    context_message_id="wamid.e2e.dash.0",
                    campaign_id=sent.id,  # matched to the campaign, as record_inbound does
                    received_at=now - timedelta(minutes=5),
                )
                for i in range(2)
            ]
        )
        s.commit()
        ids = {"channel": channel.id, "campaigns": [sent.id, paused.id, draft.id]}
    after = _figures(engine, 7)
    # The rows above are what changed: the figures the page shows are exactly these on top of what was there.
    assert (after.sent - before.sent, after.delivered - before.delivered, after.read - before.read) == (9, 7, 4)
    assert (after.failed - before.failed, after.replies - before.replies) == (1, 2)
    try:
        yield {"figures": after, "figures_90": _figures(engine, 90), **ids}
    finally:
        with Session(engine) as s:
            s.execute(delete(InboundMessage).where(InboundMessage.channel_id == ids["channel"]))
            s.execute(delete(CampaignRecipient).where(CampaignRecipient.campaign_id.in_(ids["campaigns"])))
            s.execute(delete(Campaign).where(Campaign.id.in_(ids["campaigns"])))
            s.execute(delete(Channel).where(Channel.id == ids["channel"]))
            s.commit()
        engine.dispose()


def _stat(page, label: str):
    """A figure card, found as a person does: the group named by its label."""
    return page.get_by_role("group", name=label, exact=True)


def test_sign_in_lands_on_the_dashboard_with_real_figures(page, submit_login, hubcast, sent_data, shoot):
    account = hubcast.accounts["basic"]  # every role sees it; the least one proves it
    submit_login(page, account.email, account.password)
    expect(page).to_have_url(AT_DASHBOARD)
    expect(page.get_by_role("heading", name="Dashboard", exact=True)).to_be_visible()
    f = sent_data["figures"]
    # The period picker starts on 30 days; choose 7.
    page.get_by_role("radio", name="7 days").click()
    expect(page.get_by_role("radio", name="7 days")).to_be_checked()
    expect(_stat(page, "Messages sent")).to_contain_text(f"{f.sent:,}")
    expect(_stat(page, "Delivery rate")).to_contain_text(f.delivery_rate)
    expect(_stat(page, "Delivery rate")).to_contain_text(f"{f.delivered:,} delivered")
    expect(_stat(page, "Read rate")).to_contain_text(f.read_rate)
    expect(_stat(page, "Replies")).to_contain_text(f"{f.replies:,}")
    expect(_stat(page, "Opt-outs")).to_contain_text(f"{f.opt_outs:,}")
    expect(_stat(page, "Failed")).to_contain_text(f"{f.failed:,}")
    # The per-day chart draws the window's days (recharts renders an SVG with one tick per few days).
    chart = page.get_by_role("img", name="Messages per day")
    expect(chart.locator("svg.recharts-surface").first).to_be_visible()
    expect(chart).to_contain_text(f"{datetime.now(UTC):%b} {datetime.now(UTC).day}")
    # Campaigns needing attention: the paused one with its reason; the sent one and the draft are not there.
    attention = page.get_by_role("region", name="Campaigns needing attention")
    row = attention.get_by_role("row").filter(has_text="Dash: autumn promo")
    expect(row).to_contain_text("Paused")
    expect(row).to_contain_text("#131031 Business account locked")
    expect(attention).not_to_contain_text("Dash: spring launch")
    expect(attention).not_to_contain_text("Dash: winter idea")
    # The channel's messaging limit tier and quality rating.
    card = page.locator("[id^=channel-tier-]").filter(has_text="10,000 people per 24 h")
    expect(card).to_have_count(1)
    expect(page.locator(f"#channel-quality-{sent_data['channel']}")).to_have_text("Green")
    shoot(page, "dashboard-7-days")

    # 90 days: the server recomputes the window.
    page.get_by_role("radio", name="90 days").click()
    expect(page.locator("#dashboard-period")).to_contain_text(
        f"{(datetime.now(UTC) - timedelta(days=89)):%b} {(datetime.now(UTC) - timedelta(days=89)).day} –"
    )
    expect(_stat(page, "Messages sent")).to_contain_text(f"{sent_data['figures_90'].sent:,}")
    shoot(page, "dashboard-90-days")


def test_all_campaigns_sorts_by_a_column_and_filters_by_status(page, login_as, sent_data, shoot):
    login_as(page, "advanced")
    expect(page).to_have_url(AT_CAMPAIGNS)
    table = page.get_by_role("table")
    names = table.locator("tbody th")
    expect(table.get_by_role("row").filter(has_text="Dash: winter idea")).to_contain_text("Draft")

    # Sort by name: the header button says which column; the header cell's aria-sort says the order.
    name_header = page.get_by_role("columnheader", name="Name")
    expect(name_header).to_have_attribute("aria-sort", "none")
    page.get_by_role("button", name="Name", exact=True).click()
    expect(name_header).to_have_attribute("aria-sort", "ascending")
    ours = ["Dash: autumn promo", "Dash: spring launch", "Dash: winter idea"]
    expect(names.filter(has_text="Dash:")).to_have_text(ours)
    page.get_by_role("button", name="Name", exact=True).click()
    expect(name_header).to_have_attribute("aria-sort", "descending")
    expect(names.filter(has_text="Dash:")).to_have_text(list(reversed(ours)))
    # Another column: recipients, biggest first.
    page.get_by_role("button", name="Recipients", exact=True).click()
    expect(page.get_by_role("columnheader", name="Recipients")).to_have_attribute("aria-sort", "descending")
    expect(name_header).to_have_attribute("aria-sort", "none")
    expect(names.filter(has_text="Dash:").first).to_have_text("Dash: autumn promo")  # 40 before 10 before 0

    # Filter by status, with the names users know.
    page.get_by_role("combobox", name="Status").click()
    page.get_by_role("option", name="Paused", exact=True).click()
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table.locator("tbody tr")).to_contain_text("Dash: autumn promo")
    expect(table.locator("tbody tr")).to_contain_text("Paused")
    shoot(page, "all-campaigns-sorted-filtered")

    # A date range: from yesterday keeps today's campaign; a To date before the From date is refused with the
    # reason and the table stays as it was; a range in the past leaves nothing.
    today = datetime.now(UTC).date()
    page.get_by_label("From", exact=True).fill((today - timedelta(days=1)).isoformat())
    expect(table.locator("tbody tr")).to_have_count(1)
    page.get_by_label("To", exact=True).fill((today - timedelta(days=10)).isoformat())
    expect(page.get_by_role("alert").filter(has_text="The To date is before the From date")).to_be_visible()
    expect(table.locator("tbody tr")).to_have_count(1)
    page.get_by_label("From", exact=True).fill((today - timedelta(days=20)).isoformat())
    expect(page.get_by_role("alert")).to_have_count(0)
    expect(page.get_by_text("0 campaigns")).to_be_visible()
    page.get_by_role("button", name="Clear dates").click()
    page.get_by_role("combobox", name="Status").click()
    page.get_by_role("option", name="All statuses").click()
    expect(names.filter(has_text="Dash:")).to_have_count(3)
