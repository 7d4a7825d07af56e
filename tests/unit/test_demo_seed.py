"""The demo seed fills a fresh database with usable, realistic data, and only once."""

from __future__ import annotations

import phonenumbers
import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from app.db import make_engine
from app.migrate import upgrade_to_head
from app.models import Channel, Contact, ContactIdentity, ContactList, ListMembership, Segment, Template
from app.services.demo_seed import is_fiction_number, seed_demo

TABLES = (Channel, Template, Contact, ContactIdentity, ContactList, ListMembership, Segment)


@pytest.fixture()
def engine(tmp_path):
    url = "sqlite:///" + str(tmp_path / "demo.db")
    upgrade_to_head(url)
    eng = make_engine(url)
    yield eng
    eng.dispose()


@pytest.fixture()
def seeded(engine):
    with Session(engine) as session:
        result = seed_demo(session=session)
        session.commit()
    return result


def _counts(session: Session) -> dict[str, int]:
    return {t.__tablename__: session.exec(select(func.count()).select_from(t)).one() for t in TABLES}


def test_result_reports_counts(seeded):
    assert seeded["seeded"] is True
    assert seeded["contacts"] == 500


def test_one_connected_sandbox_channel(engine, seeded):
    with Session(engine) as session:
        channels = session.exec(select(Channel)).all()
    assert len(channels) == 1
    ch = channels[0]
    assert (ch.name, ch.kind, ch.status) == ("Sandbox", "sandbox", "connected")
    assert ch.access_token and ch.app_secret and ch.verify_token
    assert ch.phone_number_id == "100000000000001" and ch.messages_per_second == 80


def test_templates(engine, seeded):
    with Session(engine) as session:
        templates = session.exec(select(Template)).all()
    approved = [t for t in templates if t.status == "APPROVED"]
    assert len(approved) >= 3
    assert {t.status for t in templates} >= {"APPROVED", "PENDING", "REJECTED"}

    def has_header_variable(t):
        return any(
            c["type"] == "HEADER" and c.get("format") == "TEXT" and "{{1}}" in c["text"] and c["example"]["header_text"]
            for c in t.components
        )

    def has_quick_reply(t):
        return any(b["type"] == "QUICK_REPLY" for c in t.components if c["type"] == "BUTTONS" for b in c["buttons"])

    assert any(has_header_variable(t) for t in approved)
    assert any(has_quick_reply(t) for t in approved)
    languages: dict[str, set[str]] = {}
    for t in approved:
        languages.setdefault(t.name, set()).add(t.language)
    assert any(len(langs) >= 2 for langs in languages.values())

    named = [t for t in approved if t.parameter_format == "NAMED"]
    assert named
    body = next(c for c in named[0].components if c["type"] == "BODY")
    assert "{{first_name}}" in body["text"]
    assert {p["param_name"] for p in body["example"]["body_text_named_params"]} >= {"first_name", "event_date"}
    assert all(t.external_id.isdigit() and t.synced_at is not None for t in templates)


def test_contacts_and_identities(engine, seeded):
    with Session(engine) as session:
        contacts = {c.id: c for c in session.exec(select(Contact)).all()}
        identities = session.exec(select(ContactIdentity)).all()
    assert len(contacts) == 500
    assert len({c.country for c in contacts.values()}) >= 6
    assert all(c.first_name and c.last_name and c.email and c.city and c.language for c in contacts.values())
    assert all(c.custom_fields["loyalty_tier"] in {"gold", "silver", "bronze"} for c in contacts.values())

    by_type: dict[str, list[ContactIdentity]] = {}
    for ident in identities:
        by_type.setdefault(ident.channel_type, []).append(ident)
    failing_on_purpose = ("+447700900000", "+447700900001", "+33639980000")  # Ofcom / Arcep fiction, invalid
    for ident in by_type["whatsapp"] + by_type["sms"]:
        number = phonenumbers.parse(ident.address)
        assert ident.address.startswith("+")
        assert is_fiction_number(ident.address), ident.address  # never a real subscriber's range (issue 13)
        if ident.address in failing_on_purpose:
            continue
        assert phonenumbers.is_valid_number(number), ident.address
        if phonenumbers.region_code_for_number(number) == "AU":  # ACMA's list is for Australians
            assert contacts[ident.contact_id].country == "AU"

    assert by_type["instagram"] and all(i.address.startswith("ig_") for i in by_type["instagram"])
    assert by_type["messenger"] and all(i.address.startswith("psid_") for i in by_type["messenger"])
    assert any(not i.subscribed for i in by_type["whatsapp"])
    # SMS-only contacts exist and have no WhatsApp identity.
    whatsapp_contacts = {i.contact_id for i in by_type["whatsapp"]}
    sms_contacts = {i.contact_id for i in by_type["sms"]}
    assert sms_contacts and not sms_contacts & whatsapp_contacts
    assert whatsapp_contacts | sms_contacts == set(contacts)

    # Exactly three numbers trigger the Sandbox's simulated failures, all reachable on WhatsApp.
    failing = [i for i in by_type["whatsapp"] + by_type["sms"] if i.address.endswith(("0000", "0001"))]
    assert sorted(i.address[-4:] for i in failing) == ["0000", "0000", "0001"]
    assert sorted(i.address for i in failing) == sorted(failing_on_purpose)
    assert all(i.channel_type == "whatsapp" and i.subscribed for i in failing)
    assert all(contacts[i.contact_id].country == ("FR" if i.address.startswith("+33") else "GB") for i in failing)


def test_lists_and_segments(engine, seeded):
    with Session(engine) as session:
        lists = {cl.name: cl for cl in session.exec(select(ContactList)).all()}
        members = session.exec(select(ListMembership)).all()
        segments = {s.name: s for s in session.exec(select(Segment)).all()}
    assert set(lists) == {"Newsletter subscribers", "VIP customers"}
    newsletter = [m for m in members if m.list_id == lists["Newsletter subscribers"].id]
    vip = [m for m in members if m.list_id == lists["VIP customers"].id]
    assert 150 <= len(newsletter) <= 250 and {m.source for m in newsletter} == {"import"}
    assert 30 <= len(vip) <= 50 and {m.source for m in vip} == {"manual"}

    assert len(segments) == 2
    assert segments["Australian customers"].rules == [{"field": "country", "op": "equals", "value": "AU"}]
    europe = segments["Gold tier in Europe"]
    assert europe.match == "all"
    assert {"field": "custom.loyalty_tier", "op": "equals", "value": "gold"} in europe.rules
    assert any(r["op"] == "in" and isinstance(r["value"], list) for r in europe.rules)


def test_second_call_is_a_no_op(engine, seeded):
    with Session(engine) as session:
        before = _counts(session)
        assert seed_demo(session=session) == {"seeded": False}
        session.commit()
    with Session(engine) as session:
        assert _counts(session) == before


def test_deterministic_people(tmp_path):
    """Same seed, same people: screenshots and docs can name demo contacts."""
    rows = []
    for name in ("a.db", "b.db"):
        url = "sqlite:///" + str(tmp_path / name)
        upgrade_to_head(url)
        eng = make_engine(url)
        with Session(eng) as session:
            seed_demo(session=session)
            session.commit()
            rows.append(
                session.exec(
                    select(Contact.first_name, Contact.last_name, Contact.country, ContactIdentity.address)
                    .join(ContactIdentity, ContactIdentity.contact_id == Contact.id)
                    .order_by(Contact.id, ContactIdentity.id)
                ).all()
            )
        eng.dispose()
    assert rows[0] == rows[1]
