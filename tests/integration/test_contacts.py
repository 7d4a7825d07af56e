"""Contacts in the base (SPEC S5): create, edit, one owner per address, consent per channel, the search."""

from __future__ import annotations

import pytest
from sqlmodel import select

from app.domain.permissions import PermissionDenied
from app.models import AuditLog, Contact, ContactIdentity
from app.services.audiences import contact_search
from app.services.audiences import contacts as svc
from app.services.audiences.contacts import ContactError

FIELDS = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "email": "ada@example.com",
    "country": "",
    "city": "London",
    "language": "en",
}


def _identities(**given: str) -> dict[str, str]:
    return {t: given.get(t, "") for t in svc.CHANNEL_TYPES}


def _create(session, actor, number="+44 7400 123456", **fields):
    contact = svc.create_contact(
        session=session,
        actor=actor,
        fields={**FIELDS, **fields},
        custom_fields={"Loyalty tier": "gold"},
        identities=_identities(whatsapp=number),
    )
    session.commit()
    return contact


def _audit(session, action: str) -> list[AuditLog]:
    return list(session.exec(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)).all())


def test_create_normalises_the_number_and_derives_the_country(session, make_user):
    admin = make_user("admin")
    contact = _create(session, admin)
    ident = session.exec(select(ContactIdentity).where(ContactIdentity.contact_id == contact.id)).one()
    assert (ident.channel_type, ident.address, ident.subscribed) == ("whatsapp", "+447400123456", True)
    assert contact.country == "GB"  # not typed: read from the number
    assert contact.custom_fields == {"loyalty_tier": "gold"}
    assert [(a.target_id, a.detail) for a in _audit(session, "contact.create")] == [
        (str(contact.id), {"channels": ["whatsapp"]})
    ]


@pytest.mark.parametrize(
    ("fields", "identities", "message"),
    [
        ({}, {"whatsapp": "07400 123456"}, "Country code missing"),
        ({}, {"whatsapp": "+44 7400 1234564567"}, "WhatsApp number"),
        ({}, {}, "at least one way to reach"),
        ({"email": "not-an-email"}, {"whatsapp": "+447400123456"}, "not an email address"),
        ({"country": "France"}, {"whatsapp": "+447400123456"}, "two-letter ISO code"),
        ({}, {"instagram": "two words"}, "Instagram id"),
    ],
)
def test_bad_input_is_refused_with_a_reason_and_nothing_is_written(session, make_user, fields, identities, message):
    admin = make_user("admin")
    with pytest.raises(ContactError, match=message):
        svc.create_contact(
            session=session, actor=admin, fields={**FIELDS, **fields}, identities=_identities(**identities)
        )
    session.rollback()
    assert session.exec(select(Contact)).all() == []


@pytest.mark.parametrize(
    ("fields", "custom", "message"),
    [
        ({"city": "Pa\x00ris"}, {}, "City holds a NUL character"),
        ({}, {"note": "a\x00b"}, "Custom field 'note' holds a NUL character"),
    ],
)
def test_a_nul_character_is_refused_by_name_before_the_database_sees_it(session, make_user, fields, custom, message):
    """PostgreSQL refuses a NUL in text and in jsonb (custom fields, 0018): the form says which field holds it."""
    admin = make_user("admin")
    ada = _create(session, admin)
    session.commit()
    with pytest.raises(ContactError, match=message):
        svc.update_contact(
            session=session,
            actor=admin,
            contact_id=ada.id,
            fields={**FIELDS, **fields},
            custom_fields=custom,
            identities=_identities(whatsapp="+44 7400 123456"),
        )
    session.rollback()
    got = svc.get_contact(session=session, actor=admin, contact_id=ada.id)
    assert got["fields"]["city"] == "London" and got["custom_fields"] == {"loyalty_tier": "gold"}


def test_an_address_belongs_to_one_contact_and_the_error_names_the_owner(session, make_user):
    admin = make_user("advanced")
    ada = _create(session, admin)
    with pytest.raises(ContactError) as exc:
        svc.create_contact(
            session=session,
            actor=admin,
            fields={**FIELDS, "first_name": "Grace", "last_name": "Hopper"},
            identities=_identities(whatsapp="0044 7400 123456"),
        )
    assert str(exc.value) == f"WhatsApp +447400123456 already belongs to Ada Lovelace (contact #{ada.id})."
    session.rollback()
    assert len(session.exec(select(Contact)).all()) == 1
    # The same number on another channel type is another address.
    other = svc.create_contact(
        session=session,
        actor=admin,
        fields={**FIELDS, "first_name": "Grace"},
        identities=_identities(sms="+447400123456"),
    )
    session.commit()
    assert other.id != ada.id


def test_edit_changes_fields_custom_fields_and_identities(session, make_user):
    admin = make_user("admin")
    ada = _create(session, admin)
    svc.set_subscription(session=session, actor=admin, contact_id=ada.id, channel_type="whatsapp", subscribed=False)
    svc.update_contact(
        session=session,
        actor=admin,
        contact_id=ada.id,
        fields={**FIELDS, "city": "Paris", "country": "fr"},
        custom_fields={"loyalty_tier": "silver", "Signup date": "2024-02-01"},
        identities=_identities(whatsapp="+44 7400 123457", instagram="ada.codes"),
    )
    session.commit()
    got = svc.get_contact(session=session, actor=admin, contact_id=ada.id)
    assert got["fields"]["city"] == "Paris" and got["fields"]["country"] == "FR"
    assert got["custom_fields"] == {"loyalty_tier": "silver", "signup_date": "2024-02-01"}
    assert got["identities"] == {"whatsapp": "+447400123457", "instagram": "ada.codes", "messenger": "", "sms": ""}
    # A changed number keeps its consent state: editing never re-subscribes anyone.
    assert got["subscribed"] == {"whatsapp": False, "instagram": True, "messenger": None, "sms": None}
    assert _audit(session, "contact.update")[-1].detail == {"identities": ["~whatsapp", "+instagram"]}

    svc.update_contact(
        session=session,
        actor=admin,
        contact_id=ada.id,
        fields=FIELDS,
        custom_fields={},
        identities=_identities(instagram="ada.codes"),
    )
    session.commit()
    assert svc.get_contact(session=session, actor=admin, contact_id=ada.id)["identities"]["whatsapp"] == ""


def test_subscribe_and_unsubscribe_are_audited_per_channel(session, make_user):
    admin = make_user("advanced")
    ada = _create(session, admin)
    svc.set_subscription(session=session, actor=admin, contact_id=ada.id, channel_type="whatsapp", subscribed=False)
    session.commit()
    ident = session.exec(select(ContactIdentity)).one()
    assert ident.subscribed is False
    svc.set_subscription(session=session, actor=admin, contact_id=ada.id, channel_type="whatsapp", subscribed=True)
    session.commit()
    session.refresh(ident)
    assert ident.subscribed is True
    logged = [
        (a.action, a.actor_id, a.target_id, a.detail)
        for a in session.exec(
            select(AuditLog)
            .where(AuditLog.action.in_(["contact.subscribe", "contact.unsubscribe"]))
            .order_by(AuditLog.id)
        )
    ]
    assert logged == [
        ("contact.unsubscribe", admin.id, str(ada.id), {"channel_type": "whatsapp", "addresses": ["+447400123456"]}),
        ("contact.subscribe", admin.id, str(ada.id), {"channel_type": "whatsapp", "addresses": ["+447400123456"]}),
    ]
    with pytest.raises(ContactError, match="has no SMS identity"):
        svc.set_subscription(session=session, actor=admin, contact_id=ada.id, channel_type="sms", subscribed=False)


def test_a_basic_user_changes_no_contact(session, make_user):
    admin, basic = make_user("admin"), make_user("basic")
    ada = _create(session, admin)
    before = svc.get_contact(session=session, actor=basic, contact_id=ada.id)  # seeing is allowed
    for call in (
        lambda: svc.create_contact(
            session=session, actor=basic, fields=FIELDS, identities=_identities(whatsapp="+33612345678")
        ),
        lambda: svc.update_contact(
            session=session,
            actor=basic,
            contact_id=ada.id,
            fields={**FIELDS, "city": "Nice"},
            identities=_identities(whatsapp="+33612345678"),
        ),
        lambda: svc.set_subscription(
            session=session, actor=basic, contact_id=ada.id, channel_type="whatsapp", subscribed=False
        ),
    ):
        with pytest.raises(PermissionDenied):
            call()
    session.rollback()
    assert svc.get_contact(session=session, actor=admin, contact_id=ada.id) == before
    assert len(session.exec(select(Contact)).all()) == 1


def _seed_for_search(session, admin):
    people = [
        ("Anna", "Müller", "DE", "+4915123456789", True),
        ("Bruno", "Silva", "BR", "+5511987654321", False),
        ("Chloé", "Martin", "FR", "+33612345678", True),
        ("Dan", "Smith", "GB", "", True),
    ]
    for first, last, country, number, subscribed in people:
        c = svc.create_contact(
            session=session,
            actor=admin,
            fields={**FIELDS, "first_name": first, "last_name": last, "country": country, "email": ""},
            identities=_identities(whatsapp=number, instagram=f"{first.lower()}.ig"),
        )
        if not subscribed:
            svc.set_subscription(
                session=session, actor=admin, contact_id=c.id, channel_type="whatsapp", subscribed=False
            )
    session.commit()


def _names(page) -> list[str]:
    return [r["name"] for r in page.rows]


def test_search_and_filters(session, make_user):
    admin = make_user("basic")  # a basic user may look
    _seed_for_search(session, make_user("admin"))
    page = lambda **kw: contact_search.contacts_page(session=session, actor=admin, **kw)
    assert page().total == 4 and _names(page()) == ["Chloé Martin", "Anna Müller", "Bruno Silva", "Dan Smith"]
    assert _names(page(search="ller")) == ["Anna Müller"]
    assert _names(page(search="+33 6 12")) == ["Chloé Martin"]  # typed with spaces, stored in E.164
    assert _names(page(search="anna mü")) == ["Anna Müller"]
    assert _names(page(country="br")) == ["Bruno Silva"]
    assert _names(page(channel="whatsapp")) == ["Chloé Martin", "Anna Müller", "Bruno Silva"]
    assert _names(page(channel="whatsapp", subscription="unsubscribed")) == ["Bruno Silva"]
    assert _names(page(channel="whatsapp", subscription="subscribed")) == ["Chloé Martin", "Anna Müller"]
    assert _names(page(channel="sms")) == []
    # Subscribed nowhere: Bruno is still subscribed on Instagram.
    assert _names(page(subscription="unsubscribed")) == []
    row = page(search="Bruno").rows[0]
    assert (row["sub_whatsapp"], row["sub_instagram"], row["sub_sms"]) == ("unsubscribed", "subscribed", "")
    assert page(page_size=3, page=2).rows[0]["name"] == "Dan Smith"
    assert svc.countries_in_use(session=session, actor=admin) == ["BR", "DE", "FR", "GB"]
