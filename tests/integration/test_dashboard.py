"""The home dashboard's figures (issue 15 §7) from known rows: exact counts, rates, per-day series, the
7/30/90-day windows (UTC days, today included), campaigns needing attention, each channel's tier and quality."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func
from sqlmodel import select

from app.domain import permissions as perm
from app.models import Campaign, CampaignRecipient, Channel, Contact, ContactIdentity, InboundMessage
from app.services.campaigns import dashboard as dashboard_service
from app.services.inbound.opt_out import record_inbound
from app.whatsapp.webhooks import InboundMessage as ParsedInbound

NOW = datetime(2026, 12, 6, 15, 30, tzinfo=UTC)  # a Sunday afternoon, UTC
TODAY = NOW.replace(hour=9, minute=0)


def ago(days: int, hour: int = 9) -> datetime:
    return (NOW - timedelta(days=days)).replace(hour=hour, minute=0)


@pytest.fixture()
def seeded(session, make_user):
    channel = Channel(
        name="Main number",
        kind="whatsapp_cloud",
        status="connected",
        display_phone_number="+33 6 00 00 00 00",
        messaging_limit_tier="TIER_2K",
        quality_rating="YELLOW",
    )
    session.add(channel)
    session.commit()

    def campaign(name, status, **kw):
        c = Campaign(name=name, status=status, channel_id=channel.id, **kw)
        session.add(c)
        session.commit()
        return c

    done = campaign("Black Friday", "sent", finished_at=ago(2))
    n = iter(range(1, 1000))

    def row(status, sent=None, failed=None, campaign_id=None):
        i = next(n)
        session.add(
            CampaignRecipient(
                campaign_id=campaign_id or done.id,
                address=f"+336000000{i:02d}",
                status=status,
                sent_at=sent,
                failed_at=failed,
                message_id=f"wamid.out{i}" if sent else None,
            )
        )

    # Today: 3 sent (1 read, 1 delivered, 1 only sent), 1 refused at once (failed, never sent).
    row("read", sent=TODAY)
    row("delivered", sent=TODAY)
    row("sent", sent=TODAY)
    row("failed", failed=TODAY)
    # 6 days ago (still in the 7 days): 1 delivered, 1 sent then failed by webhook.
    row("delivered", sent=ago(6))
    row("failed", sent=ago(6), failed=ago(6, 10))
    # 7 days ago: outside the 7 days, inside 30: 2 read.
    row("read", sent=ago(7))
    row("read", sent=ago(7, 23))
    # 45 days ago: only in 90 days.
    row("delivered", sent=ago(45))
    # Never sent (queued) and yesterday's last microsecond before midnight counts for yesterday.
    row("queued")
    row("sent", sent=(NOW - timedelta(days=1)).replace(hour=23, minute=59, second=59, microsecond=999999))

    # Replies (answers to a campaign message, recorded as the webhook does): 2 today, 1 ten days ago. Not replies:
    # a message answering nothing, one answering a wamid no campaign sent, one through another channel.
    session.commit()
    other = Channel(name="Other number", kind="whatsapp_cloud", status="connected")
    session.add(other)
    session.commit()
    inbound = [
        (channel.id, TODAY, "wamid.out1"),
        (channel.id, TODAY, "wamid.out2"),
        (channel.id, ago(10), "wamid.out7"),
        (channel.id, TODAY, None),
        (channel.id, TODAY, "wamid.unknown"),
        (other.id, TODAY, "wamid.out3"),
    ]
    for i, (channel_id, when, context) in enumerate(inbound):
        message = ParsedInbound(
            message_id=f"wamid.in{i}",
            from_wa_id="33600",
            timestamp=when,
            kind="text",
            text="Thanks!",
            context_message_id=context,
        )
        record_inbound(session=session, message=message, channel_id=channel_id)
    session.commit()
    assert session.exec(select(func.count()).select_from(InboundMessage)).one() == 6
    # Opt-outs: 1 today (still unsubscribed), 1 that re-subscribed, 1 long ago, and an Instagram unsubscribe.
    contact = Contact(first_name="Ada")
    session.add(contact)
    session.commit()
    for address, channel_type, subscribed, when in (
        ("+33611", "whatsapp", False, TODAY),
        ("+33612", "whatsapp", True, TODAY),
        ("+33613", "whatsapp", False, ago(60)),
        ("ig_1", "instagram", False, TODAY),
    ):
        session.add(
            ContactIdentity(
                contact_id=contact.id,
                channel_type=channel_type,
                address=address,
                subscribed=subscribed,
                subscription_changed_at=when,
            )
        )

    # Needing attention: paused (any age), failed within the window, sending with > 10% failed.
    paused = campaign("Paused one", "paused", pause_reason="WhatsApp refused the campaign: #131031", updated_at=ago(40))
    failed_recent = campaign("Failed recently", "failed", total_recipients=12, failed_count=12, finished_at=ago(3))
    failed_old = campaign(
        "Failed long ago", "failed", total_recipients=5, failed_count=5, finished_at=ago(50), updated_at=ago(50)
    )
    failing = campaign("Failing now", "sending", total_recipients=100, queued_count=40, failed_count=10, sent_count=50)
    fine = campaign("Sending fine", "sending", total_recipients=100, queued_count=40, failed_count=5, sent_count=55)
    session.commit()
    return {
        "user": make_user("basic"),
        "channel": channel,
        "paused": paused,
        "failed_recent": failed_recent,
        "failed_old": failed_old,
        "failing": failing,
        "fine": fine,
    }


def _dash(session, seeded, days):
    return dashboard_service.dashboard(session=session, actor=seeded["user"], days=days, now=NOW)


def test_seven_days_counts_today_and_the_six_days_before(session, seeded):
    d = _dash(session, seeded, 7)
    assert (d.since.isoformat(), d.until.isoformat()) == ("2026-11-30", "2026-12-06")
    # sent: 3 today + 2 six days ago + 1 yesterday; delivered: read 1 + delivered 1 today + delivered 6 days ago.
    assert (d.sent, d.delivered, d.read, d.failed) == (6, 3, 1, 2)
    assert (d.delivery_rate, d.read_rate) == ("50.0%", "33.3%")
    assert (d.replies, d.opt_outs) == (2, 1)
    assert [p["day"] for p in d.per_day] == [f"2026-11-{d:02d}" for d in range(30, 31)] + [
        f"2026-12-{d:02d}" for d in range(1, 7)
    ]
    by_day = {p["day"]: p for p in d.per_day}
    assert {k: by_day["2026-12-06"][k] for k in ("sent", "delivered", "read", "failed", "replies")} == {
        "sent": 3,
        "delivered": 2,
        "read": 1,
        "failed": 1,
        "replies": 2,
    }
    assert by_day["2026-12-05"]["sent"] == 1  # 23:59:59.999999 is still yesterday in UTC
    assert (by_day["2026-11-30"]["sent"], by_day["2026-11-30"]["failed"]) == (2, 1)
    assert sum(p["sent"] for p in d.per_day) == d.sent and by_day["2026-12-02"]["sent"] == 0


def test_thirty_and_ninety_days_widen_the_window(session, seeded):
    d30, d90 = _dash(session, seeded, 30), _dash(session, seeded, 90)
    assert (d30.sent, d30.delivered, d30.read, d30.replies, d30.opt_outs) == (8, 5, 3, 3, 1)
    assert (d30.delivery_rate, d30.read_rate) == ("62.5%", "60.0%")
    assert len(d30.per_day) == 30 and d30.since.isoformat() == "2026-11-07"
    assert (d90.sent, d90.delivered, d90.read, d90.opt_outs) == (9, 6, 3, 2)
    assert len(d90.per_day) == 90


def test_an_empty_window_shows_dashes_not_zero_percent(session, seeded):
    d = dashboard_service.dashboard(session=session, actor=seeded["user"], days=7, now=NOW + timedelta(days=200))
    assert (d.sent, d.delivery_rate, d.read_rate) == (0, "—", "—")


def test_campaigns_needing_attention_are_paused_failed_in_the_window_or_failing(session, seeded):
    names = {a["name"]: a for a in _dash(session, seeded, 30).attention}
    assert set(names) == {"Paused one", "Failed recently", "Failing now"}
    assert names["Paused one"]["reason"] == "WhatsApp refused the campaign: #131031"
    assert names["Paused one"]["status_label"] == "Paused"
    assert names["Failing now"]["reason"] == "10 of 60 messages failed so far (16.7%)."
    assert names["Failed recently"]["status_label"] == "Failed"
    assert "Failed long ago" in {a["name"] for a in _dash(session, seeded, 90).attention}


def test_channels_show_their_messaging_tier_and_quality(session, seeded):
    channel, other = _dash(session, seeded, 7).channels  # by name ("Other number": where a non-reply came in)
    assert (channel["name"], channel["tier"], channel["quality"]) == ("Main number", "2,000 people per 24 h", "Yellow")
    assert (other["name"], other["tier"]) == ("Other number", "not known yet")
    seeded["channel"].messaging_limit_tier, seeded["channel"].quality_rating = "", ""
    session.commit()
    channel, _ = _dash(session, seeded, 7).channels
    assert (channel["tier"], channel["quality"]) == ("not known yet", "not known yet")


@pytest.mark.parametrize("days", ["14", "", "seven", None, 0, "-7"])
def test_a_window_other_than_7_30_90_is_refused(session, seeded, days):
    with pytest.raises(dashboard_service.DashboardError, match="Choose the last 7, 30 or 90 days"):
        _dash(session, seeded, days)


def test_every_role_sees_it_and_nobody_else(session, seeded, make_user):
    for role in perm.ROLES:
        assert _dash(session, {"user": make_user(role)}, 7).sent == 6
    with pytest.raises(perm.NotAuthenticated):
        dashboard_service.dashboard(session=session, actor=None, days=7, now=NOW)
    gone = make_user("admin", active=False)
    with pytest.raises(perm.NotAuthenticated):
        dashboard_service.dashboard(session=session, actor=gone, days=7, now=NOW)


def test_settled_days_are_counted_once_and_read_back_from_the_daily_table(session, seeded):
    """Days older than SETTLE_DAYS come from daily_message_stats after their first count: the same figures as the
    live count, a later change to such a day is not recounted (documented), and recent days stay live."""
    from sqlalchemy import func, select, update

    from app.models import DailyMessageStats
    from app.services.campaigns import daily_stats

    live_90 = dashboard_service.live_sent_by_day(session, dashboard_service.window_start(90, NOW))
    assert session.execute(select(func.count()).select_from(DailyMessageStats)).scalar_one() == 0
    first = _dash(session, seeded, 90)
    stored = {r.day: (r.sent, r.delivered, r.read) for r in session.execute(select(DailyMessageStats)).scalars()}
    # Every settled day of the window is stored (zeros included), and nothing from the live days.
    boundary = daily_stats.settled_before(NOW)
    assert len(stored) == 90 - daily_stats.SETTLE_DAYS - 1 and max(stored) < boundary
    by_day = {p["day"]: (p["sent"], p["delivered"], p["read"]) for p in first.per_day}
    assert {d.isoformat(): v for d, v in live_90.items()} == {k: v for k, v in by_day.items() if v != (0, 0, 0)}

    # A read arriving late for a message sent 7 days ago (settled), and one for today's "sent" message.
    session.execute(
        update(CampaignRecipient)
        .where(CampaignRecipient.status == "delivered", CampaignRecipient.sent_at == ago(45))
        .values(status="read")
    )
    session.execute(
        update(CampaignRecipient)
        .where(CampaignRecipient.status == "sent", CampaignRecipient.sent_at == TODAY)
        .values(status="read")
    )
    session.commit()
    again = {p["day"]: (p["sent"], p["delivered"], p["read"]) for p in _dash(session, seeded, 90).per_day}
    assert again[ago(45).date().isoformat()] == by_day[ago(45).date().isoformat()]  # settled: kept as counted
    assert again[TODAY.date().isoformat()] == (3, 3, 2)  # live: the new read shows at once
    # The worker's fill has nothing left to count for this window's settled days.
    assert daily_stats.fill_settled_days(session, dashboard_service.live_sent_by_day, NOW) == 0
