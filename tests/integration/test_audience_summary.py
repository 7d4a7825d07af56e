"""The audience summary the wizard shows (SPEC S15): only subscribed contacts count, per channel type."""

import pytest
from sqlmodel import select

from app.domain.permissions import PermissionDenied
from app.models import Channel, Contact, ContactIdentity
from app.services.audiences import lists, segments
from app.services.audiences.csv_reader import check_csv
from app.services.audiences.summary import AudienceError, audience_contact_ids, audience_summary, csv_audience_summary


def person(session, name, identities, country="AU", **custom):
    """identities: [(channel_type, address, subscribed)]"""
    contact = Contact(first_name=name, country=country, custom_fields=custom)
    session.add(contact)
    session.flush()
    for kind, address, subscribed in identities:
        session.add(ContactIdentity(contact_id=contact.id, channel_type=kind, address=address, subscribed=subscribed))
    session.flush()
    return contact


@pytest.fixture()
def audience(session, make_user):
    admin = make_user("admin")
    people = [
        person(session, "wa", [("whatsapp", "+61400000001", True)], tier="gold"),
        person(session, "wa+ig", [("whatsapp", "+61400000002", True), ("instagram", "ig_2", True)]),
        person(session, "wa-unsub", [("whatsapp", "+61400000003", False)]),
        person(session, "wa-unsub+ms", [("whatsapp", "+61400000004", False), ("messenger", "ps_4", True)]),
        person(session, "ig-only", [("instagram", "ig_5", True)], city_code="SYD"),
        person(session, "sms-only", [("sms", "+61400000006", True)]),
        person(session, "nothing", []),
        person(session, "two-wa", [("whatsapp", "+61400000008", False), ("whatsapp", "+61400000009", True)]),
        person(session, "elsewhere", [("whatsapp", "+33600000010", True)], country="FR"),
    ]
    session.commit()
    au = [c.id for c in people if c.country == "AU"]
    contact_list = lists.create_list(session=session, actor=admin, name="Australians")
    lists.add_members(session=session, actor=admin, list_id=contact_list.id, contact_ids=au)
    segment = segments.create_segment(
        session=session, actor=admin, name="AU", rules=[{"field": "country", "op": "equals", "value": "AU"}]
    )
    sandbox = Channel(name="Sandbox", kind="sandbox", status="connected")
    session.add(sandbox)
    session.commit()
    return {"list": contact_list.id, "segment": segment.id, "channel": sandbox.id, "admin": admin}


@pytest.mark.parametrize("kind", ["list", "segment"])
def test_summary_counts_only_subscribed_contacts(session, make_user, audience, kind):
    summary = audience_summary(
        session=session, actor=make_user("basic"), kind=kind, ref_id=audience[kind], channel_id=audience["channel"]
    )
    assert summary.total == 8
    assert summary.subscribed_by_channel == {"whatsapp": 3, "instagram": 2, "messenger": 1, "sms": 1}
    assert summary.reach == 3  # wa, wa+ig, two-wa (one of its numbers is still subscribed)
    assert summary.not_reachable == 3  # wa-unsub+ms, ig-only, sms-only
    assert summary.unsubscribed == 2  # wa-unsub, wa-unsub+ms
    assert summary.no_channel == 2  # wa-unsub, nothing
    assert summary.suggested_channel_types == ["whatsapp", "instagram", "messenger", "sms"]
    assert summary.variable_fields[:6] == ["first_name", "last_name", "email", "country", "city", "language"]
    assert set(summary.variable_fields[6:]) == {"custom.tier", "custom.city_code"}
    assert summary.channel_id == audience["channel"] and summary.channel_can_send


def test_contact_unsubscribing_leaves_the_reach(session, make_user, audience):
    actor = make_user("basic")
    before = audience_summary(session=session, actor=actor, kind="segment", ref_id=audience["segment"], channel_id=None)
    ident = session.exec(select(ContactIdentity).where(ContactIdentity.address == "+61400000001")).one()
    ident.subscribed = False
    session.commit()
    after = audience_summary(session=session, actor=actor, kind="segment", ref_id=audience["segment"], channel_id=None)
    assert (before.reach - after.reach, after.unsubscribed - before.unsubscribed) == (1, 1)


def test_a_contact_added_later_joins_the_segment_summary(session, make_user, audience):
    person(session, "new", [("whatsapp", "+61400000099", True)])
    session.commit()
    summary = audience_summary(session=session, actor=make_user("basic"), kind="segment", ref_id=audience["segment"])
    assert (summary.total, summary.reach) == (9, 4)


def test_audience_ids_are_a_select_the_sender_can_freeze(session, audience):
    ids = audience_contact_ids("list", audience["list"])
    assert len(session.execute(ids).all()) == 8
    ids = audience_contact_ids("segment", audience["segment"])  # no session given: the rules are read on their own
    assert len(session.execute(ids).all()) == 8


def test_empty_list_summary(session, make_user, audience):
    empty = lists.create_list(session=session, actor=audience["admin"], name="Empty")
    summary = audience_summary(session=session, actor=make_user("basic"), kind="list", ref_id=empty.id)
    assert (summary.total, summary.reach, summary.suggested_channel_types) == (0, 0, [])


@pytest.mark.parametrize(
    "kind, ref_id, channel, message",
    [
        ("list", 999, None, "That list no longer exists."),
        ("segment", 999, None, "That segment no longer exists."),
        ("group", 1, None, "Unknown audience kind 'group' (list or segment)."),
        ("list", "abc", None, "Choose a list or a segment."),
    ],
)
def test_unknown_audience_or_channel_is_a_clear_error(session, make_user, audience, kind, ref_id, channel, message):
    with pytest.raises(AudienceError) as info:
        audience_summary(session=session, actor=make_user("basic"), kind=kind, ref_id=ref_id, channel_id=channel)
    assert str(info.value) == message


def test_missing_channel_is_a_clear_error(session, make_user, audience):
    with pytest.raises(AudienceError, match="That channel no longer exists."):
        audience_summary(
            session=session, actor=make_user("basic"), kind="list", ref_id=audience["list"], channel_id=999
        )


def test_summary_requires_a_signed_in_user(session, audience):
    with pytest.raises(PermissionDenied):
        audience_summary(session=session, actor=None, kind="list", ref_id=audience["list"])


def test_csv_summary_reach_is_the_unique_valid_numbers(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("phone;first_name\n+61412345678;Ann\n+61 412 345 678;Ann again\n0412;Bad\n+442079460958;Tom\n")
    summary = csv_audience_summary(check_csv(path))
    assert (summary.kind, summary.total, summary.reach, summary.invalid, summary.duplicates) == ("csv", 4, 2, 1, 1)
    assert summary.variable_fields == ["phone", "first_name"]
    assert summary.subscribed_by_channel["whatsapp"] == 2


@pytest.mark.parametrize("kind", ["list", "segment"])
def test_summary_split_into_id_ranges_adds_up_to_the_same(session, make_user, audience, monkeypatch, kind):
    """PostgreSQL sums large audiences over contact id ranges in parallel; the figures must not change."""
    from app.services.audiences import summary as audience_service

    ids = audience_contact_ids(kind, audience[kind], session=session)
    whole = session.execute(audience_service._summary_query(ids)).one()
    ranges = [(0, 3), (4, 6), (7, 10**9)]
    split = session.execute(audience_service._summary_query(ids, ranges)).one()
    assert tuple(split) == tuple(whole)
    monkeypatch.setattr(audience_service, "PARALLEL_MIN_CONTACTS", 0)  # take the parallel path on PostgreSQL
    summary = audience_summary(session=session, actor=make_user("basic"), kind=kind, ref_id=audience[kind])
    assert (summary.total, summary.reach, summary.not_reachable) == (8, 3, 3)
