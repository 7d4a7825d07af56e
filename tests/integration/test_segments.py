"""Segments on the real database (SQLite here, PostgreSQL under `make test-pg`): rules are SQL at use time."""

from datetime import UTC, datetime

import pytest
from sqlmodel import select

from app.domain.permissions import PermissionDenied
from app.models import AuditLog, Contact, ContactIdentity, Segment
from app.services.audiences import segments
from app.services.audiences.segments import SegmentError
from app.services.audiences.summary import audience_contact_ids


def add_contact(session, first, country, *, tier=None, phone=None, subscribed=True, created=None, **fields):
    contact = Contact(first_name=first, country=country, custom_fields={"tier": tier} if tier else {}, **fields)
    if created:
        contact.created_at = created
    session.add(contact)
    session.flush()
    if phone:
        session.add(
            ContactIdentity(contact_id=contact.id, channel_type="whatsapp", address=phone, subscribed=subscribed)
        )
    session.commit()
    return contact


@pytest.fixture()
def base(session):
    add_contact(session, "Ann", "AU", tier="gold", phone="+61412345001", city="Sydney")
    add_contact(session, "Bob", "AU", tier="silver", phone="+61412345002", city="Perth")
    add_contact(
        session,
        "Chloé",
        "FR",
        tier="gold",
        phone="+33612345003",
        city="Paris",
        created=datetime(2024, 1, 1, tzinfo=UTC),
    )
    add_contact(session, "Dora", "DE", phone="+4915112345004", city="Berlin")
    return session


GOLD_AU = [{"field": "custom.tier", "op": "equals", "value": "Gold"}, {"field": "country", "op": "in", "value": "AU"}]


def members(session, segment_id):
    ids = audience_contact_ids("segment", segment_id, session=session)
    return sorted(session.execute(select(Contact.first_name).where(Contact.id.in_(ids))).scalars())


def test_advanced_user_creates_a_segment_and_it_is_audited(base, make_user):
    user = make_user("advanced")
    segment = segments.create_segment(session=base, actor=user, name=" Gold  in Australia ", rules=GOLD_AU)
    base.commit()
    assert segment.name == "Gold in Australia" and segment.match == "all"
    assert members(base, segment.id) == ["Ann"]
    entry = base.exec(select(AuditLog).where(AuditLog.action == "segment.create")).one()
    assert entry.actor_id == user.id and entry.target_id == str(segment.id)


def test_a_contact_added_later_that_matches_is_in_the_segment(base, make_user):
    segment = segments.create_segment(session=base, actor=make_user("admin"), name="Gold AU", rules=GOLD_AU)
    base.commit()
    add_contact(base, "Eve", "AU", tier="GOLD", phone="+61412345005")
    assert members(base, segment.id) == ["Ann", "Eve"]


@pytest.mark.parametrize(
    "rules, match, expected",
    [
        ([{"field": "city", "op": "contains", "value": "PER"}], "all", ["Bob"]),
        ([{"field": "custom.tier", "op": "is_empty"}], "all", ["Dora"]),
        ([{"field": "custom.tier", "op": "not_equals", "value": "gold"}], "all", ["Bob", "Dora"]),
        ([{"field": "created_at", "op": "before", "value": "2025-01-01"}], "all", ["Chloé"]),
        (
            [{"field": "country", "op": "equals", "value": "de"}, {"field": "city", "op": "equals", "value": "paris"}],
            "any",
            ["Chloé", "Dora"],
        ),
    ],
)
def test_rules_run_as_sql_on_this_database(base, make_user, rules, match, expected):
    segment = segments.create_segment(session=base, actor=make_user("advanced"), name="S", rules=rules, match=match)
    assert members(base, segment.id) == expected
    assert segments.count_segment(session=base, actor=make_user("basic"), rules=rules, match=match) == len(expected)


def test_live_count_while_editing_needs_no_saved_segment(base, make_user):
    basic = make_user("basic")
    assert segments.count_segment(session=base, actor=basic, rules=GOLD_AU, match="all") == 1
    assert segments.count_segment(session=base, actor=basic, rules=GOLD_AU, match="any") == 3
    with pytest.raises(SegmentError, match="Rule 1: choose a field"):
        segments.count_segment(session=base, actor=basic, rules=[{"op": "equals"}], match="all")


def test_names_are_unique_whatever_the_case(base, make_user):
    user = make_user("advanced")
    first = segments.create_segment(session=base, actor=user, name="Gold AU", rules=GOLD_AU)
    with pytest.raises(SegmentError, match='A segment named "gold au" already exists'):
        segments.create_segment(session=base, actor=user, name="gold au", rules=GOLD_AU)
    other = segments.create_segment(session=base, actor=user, name="Other", rules=GOLD_AU)
    with pytest.raises(SegmentError, match="already exists"):
        segments.update_segment(session=base, actor=user, segment_id=other.id, name="GOLD AU")
    segments.update_segment(session=base, actor=user, segment_id=first.id, name="Gold AU")  # its own name is fine


def test_update_changes_rules_and_bad_input_changes_nothing(base, make_user):
    user = make_user("advanced")
    segment = segments.create_segment(session=base, actor=user, name="Gold AU", rules=GOLD_AU)
    base.commit()
    segments.update_segment(session=base, actor=user, segment_id=segment.id, match="any")
    base.commit()
    assert members(base, segment.id) == ["Ann", "Bob", "Chloé"]
    with pytest.raises(SegmentError, match="Add at least one rule"):
        segments.update_segment(session=base, actor=user, segment_id=segment.id, name="Renamed", rules=[])
    base.rollback()
    stored = base.get(Segment, segment.id)
    base.refresh(stored)
    assert stored.name == "Gold AU" and stored.match == "any" and len(stored.rules) == 2


@pytest.mark.parametrize("action", ["create", "update", "delete"])
def test_basic_user_cannot_change_segments_and_nothing_changes(base, make_user, action):
    segment = segments.create_segment(session=base, actor=make_user("admin"), name="Gold AU", rules=GOLD_AU)
    base.commit()
    basic = make_user("basic")
    with pytest.raises(PermissionDenied):
        if action == "create":
            segments.create_segment(session=base, actor=basic, name="Mine", rules=GOLD_AU)
        elif action == "update":
            segments.update_segment(session=base, actor=basic, segment_id=segment.id, name="Mine", rules=[])
        else:
            segments.delete_segment(session=base, actor=basic, segment_id=segment.id)
    base.rollback()
    stored = base.exec(select(Segment)).all()
    assert [(s.name, s.rules) for s in stored] == [("Gold AU", segment.rules)]


def test_delete_and_overview(base, make_user):
    user = make_user("advanced")
    keep = segments.create_segment(session=base, actor=user, name="Gold AU", rules=GOLD_AU)
    gone = segments.create_segment(
        session=base, actor=user, name="Germany", rules=[{"field": "country", "op": "equals", "value": "DE"}]
    )
    base.commit()
    segments.delete_segment(session=base, actor=user, segment_id=gone.id)
    base.commit()
    rows = segments.list_segments(session=base, actor=make_user("basic"))
    assert [(r["id"], r["name"], r["contacts"], r["rules"]) for r in rows] == [
        (keep.id, "Gold AU", 1, "tier equals Gold and Country is one of AU")
    ]
    with pytest.raises(SegmentError, match="no longer exists"):
        segments.delete_segment(session=base, actor=user, segment_id=gone.id)
