"""All Campaigns (issue 15 §8): sorted on the server by any column, filtered by status and a date range,
statuses named as users know them, and bad input refused with a clear message."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.models import Campaign, Channel
from app.services.campaigns import listing

D = lambda day, hour=12: datetime(2026, 11, day, hour, tzinfo=UTC)


@pytest.fixture()
def world(session, make_user):
    alice, bob = make_user("basic", email="alice@example.com"), make_user("advanced", email="bob@example.com")
    a, b = Channel(name="Alpha line", kind="sandbox"), Channel(name="Beta line", kind="sandbox")
    session.add_all([a, b])
    session.commit()
    specs = [
        # name, status, channel, creator, total, queued, created, scheduled, started
        ("Winter sale", "sent", a, alice, 300, 0, D(1), None, D(2)),
        ("autumn teaser", "sending", b, bob, 1000, 750, D(3), None, D(10)),
        ("Black Friday", "scheduled", a, bob, 0, 0, D(4), D(28), None),
        ("Draft idea", "draft", None, alice, 0, 0, D(20), None, None),
        ("Cyber Monday", "paused", b, alice, 200, 100, D(5), None, D(30, 8)),
        ("Old failure", "failed", a, bob, 50, 0, D(6), None, D(7)),
        ("Cancelled promo", "cancelled", a, alice, 0, 0, D(8), D(9), None),
    ]
    ids = {}
    for name, status, ch, who, total, queued, created, scheduled, started in specs:
        c = Campaign(
            name=name,
            status=status,
            channel_id=ch.id if ch else None,
            created_by_id=who.id,
            total_recipients=total,
            queued_count=queued,
            created_at=created,
            scheduled_at=scheduled,
            started_at=started,
        )
        session.add(c)
        session.commit()
        ids[name] = c.id
    return {"user": alice, "ids": ids}


def names(session, world, **kw) -> list[str]:
    return [r["name"] for r in listing.campaigns_page(session=session, actor=world["user"], **kw).rows]


def test_default_order_is_newest_created_first(session, world):
    assert names(session, world)[:3] == ["Draft idea", "Cancelled promo", "Old failure"]


def test_sort_by_name_ignores_case_both_ways(session, world):
    asc = names(session, world, sort="name", direction="asc")
    assert asc == [
        "autumn teaser",
        "Black Friday",
        "Cancelled promo",
        "Cyber Monday",
        "Draft idea",
        "Old failure",
        "Winter sale",
    ]
    assert names(session, world, sort="name", direction="desc") == list(reversed(asc))


def test_sort_by_status_follows_the_lifecycle(session, world):
    rows = listing.campaigns_page(session=session, actor=world["user"], sort="status", direction="asc").rows
    assert [r["status_label"] for r in rows] == [
        "Draft",
        "Scheduled",
        "Sending",
        "Paused",
        "Sent",
        "Failed",
        "Cancelled",
    ]


def test_sort_by_numbers_people_channels_and_dates(session, world):
    assert names(session, world, sort="recipients", direction="desc")[:3] == [
        "autumn teaser",
        "Winter sale",
        "Cyber Monday",
    ]
    # progress: Winter sale and Old failure 100%, Cyber Monday 50%, autumn teaser 25%, the rest 0 (ties by id).
    assert names(session, world, sort="progress", direction="desc")[:4] == [
        "Old failure",
        "Winter sale",
        "Cyber Monday",
        "autumn teaser",
    ]
    assert names(session, world, sort="channel", direction="asc")[0] == "Draft idea"  # no channel sorts first
    assert names(session, world, sort="channel", direction="desc")[:2] == ["Cyber Monday", "autumn teaser"]
    # alice@ before bob@; within one creator, ties in id order
    assert names(session, world, sort="created_by", direction="asc")[-3:] == [
        "autumn teaser",
        "Black Friday",
        "Old failure",
    ]
    # "when": started, else scheduled, else created (a draft)
    assert names(session, world, sort="when", direction="desc") == [
        "Cyber Monday",
        "Black Friday",
        "Draft idea",
        "autumn teaser",
        "Cancelled promo",
        "Old failure",
        "Winter sale",
    ]


def test_filter_by_status_and_labels(session, world):
    page = listing.campaigns_page(session=session, actor=world["user"], status="paused")
    assert [(r["name"], r["status"], r["status_label"]) for r in page.rows] == [("Cyber Monday", "paused", "Paused")]
    assert page.total == 1


def test_filter_by_date_range_is_inclusive_in_utc_days(session, world):
    assert names(session, world, sort="name", direction="asc", date_from="2026-11-09", date_to="2026-11-20") == [
        "autumn teaser",
        "Cancelled promo",
        "Draft idea",
    ]
    assert names(session, world, sort="name", direction="asc", date_from="2026-11-28") == [
        "Black Friday",
        "Cyber Monday",
    ]
    assert names(session, world, sort="name", direction="asc", date_to="2026-11-02") == ["Winter sale"]
    # Combined with a status and a search, and counted on the server for the pager.
    page = listing.campaigns_page(
        session=session, actor=world["user"], status="sent", date_from="2026-11-01", date_to="2026-11-30", search="win"
    )
    assert (page.total, [r["name"] for r in page.rows]) == (1, ["Winter sale"])


def test_paging_is_kept_with_a_sort(session, world):
    first = listing.campaigns_page(session=session, actor=world["user"], sort="name", direction="asc", page_size=3)
    second = listing.campaigns_page(
        session=session, actor=world["user"], sort="name", direction="asc", page_size=3, page=2
    )
    assert (first.total, first.pages) == (7, 3)
    assert [r["name"] for r in first.rows + second.rows] == names(session, world, sort="name", direction="asc")[:6]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"sort": "password_hash"}, "cannot be sorted by"),
        ({"direction": "sideways"}, "ascending or descending"),
        ({"status": "archived"}, "Unknown status"),
        ({"date_from": "31/12/2026"}, "The From date must be a date like 2026-12-31"),
        ({"date_to": "2026-02-30"}, "The To date must be a date like"),
        ({"date_from": "2026-11-10", "date_to": "2026-11-09"}, "The To date is before the From date"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(session, world, kw, message):
    with pytest.raises(listing.ListingError, match=message):
        listing.campaigns_page(session=session, actor=world["user"], **kw)
