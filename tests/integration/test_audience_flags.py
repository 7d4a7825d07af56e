"""contacts.channel_flags (migration 0005): kept right by the database whoever writes identities, and the
summary read from it equals the reference query (identities joined and grouped per contact) on random bases.

Runs on SQLite by default and on PostgreSQL with DATABASE_URL (row triggers there, statement triggers here).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, insert, select, text, update
from sqlmodel import Session

from app.models import Contact, ContactIdentity, ContactList, ListMembership
from app.services.audiences import contact_search, contacts, lists
from app.services.audiences import summary as audience_service
from app.services.audiences.channel_flags import CHANNEL_BITS
from app.services.audiences.segment_sql import rules_condition
from app.services.audiences.summary import CHANNEL_TYPES, SUMMARY_COLUMNS

COUNTRIES = ["AU", "FR", "DE", "GB", ""]
TIERS = ["gold", "silver", "bronze"]


def expected_flags(session: Session) -> dict[int, int]:
    """Each contact's flags computed in Python from its identities (the definition, independently)."""
    flags = dict.fromkeys(session.execute(select(Contact.id)).scalars(), 0)
    for cid, kind, subscribed in session.execute(
        select(ContactIdentity.contact_id, ContactIdentity.channel_type, ContactIdentity.subscribed)
    ):
        bit = CHANNEL_BITS.get(kind, 0)
        flags[cid] |= bit if subscribed else bit << 4
    return flags


def stored_flags(session: Session) -> dict[int, int]:
    return dict(session.execute(select(Contact.id, Contact.channel_flags)).all())


def assert_flags_right(session: Session) -> None:
    session.expire_all()
    assert stored_flags(session) == expected_flags(session)


def random_base(session: Session, rng: random.Random, n: int) -> tuple[int, list[int]]:
    """n contacts with 0-4 identities each (sometimes two on one channel type), and a list of about half."""
    now = datetime.now(UTC)
    session.execute(
        insert(Contact),
        [
            {
                "first_name": f"F{i}",
                "last_name": f"L{rng.randrange(20)}",
                "email": f"u{i}@example.com",
                "country": rng.choice(COUNTRIES),
                "city": "",
                "language": "",
                "custom_fields": {"tier": rng.choice(TIERS)} if rng.random() < 0.7 else {},
                "created_at": now - timedelta(days=rng.randrange(400)),
                "updated_at": now,
            }
            for i in range(n)
        ],
    )
    ids = list(session.execute(select(Contact.id).order_by(Contact.id)).scalars())
    rows = []
    for cid in ids:
        for _ in range(rng.choice([0, 1, 1, 1, 2, 2, 3, 4])):
            kind = rng.choice(CHANNEL_TYPES)
            rows.append(
                {
                    "contact_id": cid,
                    "channel_type": kind,
                    "address": f"{kind}-{cid}-{len(rows)}",
                    "subscribed": rng.random() < 0.75,
                    "subscription_changed_at": now,
                    "created_at": now,
                }
            )
    if rows:
        session.execute(insert(ContactIdentity), rows)
    contact_list = ContactList(name=f"random {rng.random()}")
    session.add(contact_list)
    session.flush()
    members = [cid for cid in ids if rng.random() < 0.5]
    if members:
        session.execute(
            insert(ListMembership),
            [{"list_id": contact_list.id, "contact_id": cid, "source": "import"} for cid in members],
        )
    session.commit()
    return contact_list.id, ids


def random_rules(rng: random.Random) -> tuple[list[dict], str]:
    pool = [
        {"field": "country", "op": "equals", "value": rng.choice(COUNTRIES[:-1])},
        {"field": "country", "op": "in", "value": rng.sample(COUNTRIES[:-1], 2)},
        {"field": "country", "op": "is_not_empty"},
        {"field": "custom.tier", "op": "equals", "value": rng.choice(TIERS)},
        {"field": "created_at", "op": "after", "value": (datetime.now(UTC) - timedelta(days=200)).date().isoformat()},
        {"field": "last_name", "op": "contains", "value": str(rng.randrange(10))},
    ]
    return rng.sample(pool, rng.randrange(0, 3)), rng.choice(["all", "any"])


def mutate(session: Session, rng: random.Random, ids: list[int]) -> None:
    """Every kind of writer: ORM, Core bulk UPDATE/DELETE, moving identities between contacts, cascades."""
    idents = list(session.execute(select(ContactIdentity.id)).scalars())
    flip = rng.sample(idents, min(len(idents), 15))
    session.execute(
        update(ContactIdentity).where(ContactIdentity.id.in_(flip)).values(subscribed=~ContactIdentity.subscribed)
    )  # a bulk UPDATE, as sending/outcomes.py does
    session.execute(
        update(ContactIdentity)
        .where(ContactIdentity.id.in_(rng.sample(idents, 5)))
        .values(channel_type=rng.choice(CHANNEL_TYPES), address=text("address || '-moved'"))
    )
    for ident_id in rng.sample(idents, 5):  # identities handed to another contact
        session.execute(
            update(ContactIdentity).where(ContactIdentity.id == ident_id).values(contact_id=rng.choice(ids))
        )
    for ident_id in rng.sample(idents, 3):  # ORM changes
        ident = session.get(ContactIdentity, ident_id)
        if ident is not None:
            ident.subscribed = not ident.subscribed
            session.add(ident)
    session.flush()
    session.execute(delete(ContactIdentity).where(ContactIdentity.id.in_(rng.sample(idents, 10))))
    session.execute(
        update(ContactIdentity)
        .where(ContactIdentity.id.in_(rng.sample(idents, 10)))
        .values(created_at=datetime.now(UTC))
    )  # no flag changes: nothing to recompute
    gone = rng.sample(ids, 3)
    session.execute(delete(ListMembership).where(ListMembership.contact_id.in_(gone)))
    session.execute(delete(Contact).where(Contact.id.in_(gone)))  # identities go by cascade
    for cid in gone:
        ids.remove(cid)
    session.commit()


def assert_summaries_match(session: Session, list_id: int, rng: random.Random) -> None:
    audiences = [audience_service.list_contact_ids(list_id), audience_service.segment_contact_ids([], "all")]
    for _ in range(6):
        rules, match = random_rules(rng)
        audiences.append(audience_service.segment_contact_ids(rules, match))
    for ids in audiences:
        reference = audience_service.reference_summary_row(session, ids)
        fast = audience_service.counts_from_flags(audience_service.flags_histogram(session, ids))
        assert fast == {name: int(getattr(reference, name)) for name in SUMMARY_COLUMNS}, str(ids)
        session.rollback()  # the reference's SET LOCAL stays in its transaction


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_flags_and_summary_equal_the_reference_on_random_bases(session, seed):
    rng = random.Random(seed)
    list_id, ids = random_base(session, rng, 150)
    assert_flags_right(session)
    assert_summaries_match(session, list_id, rng)
    for _ in range(3):
        mutate(session, rng, ids)
        assert_flags_right(session)
        assert_summaries_match(session, list_id, rng)


def test_services_keep_the_flags(session, make_user):
    admin = make_user("admin")
    ann = contacts.create_contact(
        session=session,
        actor=admin,
        fields={"first_name": "Ann"},
        identities={"whatsapp": "+61412345678", "instagram": "ann_ig"},
    )
    session.commit()
    assert_flags_right(session)
    assert session.get(Contact, ann.id).channel_flags == CHANNEL_BITS["whatsapp"] | CHANNEL_BITS["instagram"]
    contacts.set_subscription(
        session=session, actor=admin, contact_id=ann.id, channel_type="whatsapp", subscribed=False
    )
    session.commit()
    assert_flags_right(session)
    contacts.update_contact(
        session=session,
        actor=admin,
        contact_id=ann.id,
        fields={"first_name": "Ann"},
        identities={"whatsapp": "+61412345678", "sms": "+61412345679"},
    )
    session.commit()
    assert_flags_right(session)
    session.refresh(ann)
    assert ann.channel_flags == (CHANNEL_BITS["whatsapp"] << 4) | CHANNEL_BITS["sms"]
    crowd = lists.create_list(session=session, actor=admin, name="Crowd")
    lists.add_members(session=session, actor=admin, list_id=crowd.id, contact_ids=[ann.id])
    session.commit()
    summary = audience_service.audience_summary(session=session, actor=admin, kind="list", ref_id=crowd.id)
    assert (summary.total, summary.reach, summary.unsubscribed, summary.not_reachable) == (1, 0, 1, 1)


def test_contact_filters_equal_identity_lookups(session, make_user):
    """The Contacts page's channel/subscription filters read the flags; same contacts as EXISTS lookups."""
    rng = random.Random(9)
    random_base(session, rng, 200)
    admin = make_user("admin")
    expected = expected_flags(session)
    idents = session.execute(
        select(ContactIdentity.contact_id, ContactIdentity.channel_type, ContactIdentity.subscribed)
    ).all()

    def having(channel: str, subscribed: bool | None) -> set[int]:
        return {
            cid
            for cid, kind, sub in idents
            if (not channel or kind == channel) and (subscribed is None or bool(sub) == subscribed)
        }

    for channel in ["", *CHANNEL_TYPES]:
        for subscription in ["", "subscribed", "unsubscribed"]:
            if subscription == "subscribed":
                want = having(channel, True)
            elif subscription == "unsubscribed":
                want = having(channel, False) if channel else having("", None) - having("", True)
            else:
                want = having(channel, None) if channel else set(expected)
            found, page = set(), 1
            while True:
                result = contact_search.contacts_page(
                    session=session, actor=admin, channel=channel, subscription=subscription, page=page, page_size=50
                )
                found |= {row["id"] for row in result.rows}
                if page >= result.pages:
                    break
                page += 1
            assert found == want, (channel, subscription)
            assert result.total == len(want)


def test_segment_condition_reads_only_contacts(session):
    """A segment's summary reads its rules' condition over contacts directly (no self-join)."""
    ids = audience_service.segment_contact_ids([{"field": "country", "op": "equals", "value": "AU"}])
    assert audience_service._contacts_condition(ids) is not None
    sql = str(audience_service._contacts_of(ids, Contact.channel_flags).compile())
    assert sql.count("FROM contacts") == 1
    assert audience_service._contacts_condition(audience_service.list_contact_ids(1)) is None
    assert rules_condition([]) is not None


def test_truncating_identities_clears_the_flags(session):
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("TRUNCATE is PostgreSQL's (SQLite has DELETE, covered above)")
    random_base(session, random.Random(5), 30)
    session.execute(text("TRUNCATE contact_identities"))
    session.commit()
    assert set(stored_flags(session).values()) == {0}


def test_migration_backfills_existing_identities(tmp_path):
    """Upgrading a base that already has identities computes every contact's flags (and downgrade works)."""
    from alembic import command

    from app.db import make_engine
    from app.migrate import alembic_config

    url = f"sqlite:///{tmp_path / 'backfill.db'}"
    cfg = alembic_config(url)
    command.upgrade(cfg, "0004")
    engine = make_engine(url)
    rng = random.Random(11)
    now = datetime.now(UTC).isoformat()
    with engine.begin() as conn:
        for i in range(1, 61):
            conn.execute(
                text(
                    "INSERT INTO contacts (id, first_name, last_name, email, country, city, language, "
                    "custom_fields, created_at, updated_at) VALUES (:i, 'a', 'b', '', '', '', '', '{}', "
                    ":now, :now)"
                ),
                {"i": i, "now": now},
            )
            for n in range(rng.randrange(4)):
                conn.execute(
                    text(
                        "INSERT INTO contact_identities (contact_id, channel_type, address, subscribed, "
                        "subscription_changed_at, created_at) VALUES (:i, :k, :a, :s, :now, :now)"
                    ),
                    {"i": i, "k": rng.choice(CHANNEL_TYPES), "a": f"x{i}-{n}", "s": rng.random() < 0.6, "now": now},
                )
    command.upgrade(cfg, "head")
    with Session(engine) as session:
        assert_flags_right(session)
        assert any(stored_flags(session).values())
    command.downgrade(cfg, "0004")
    command.upgrade(cfg, "head")
    with Session(engine) as session:
        assert_flags_right(session)
    engine.dispose()


def test_search_conditions_equal_the_plain_substring_match(session, make_user, monkeypatch):
    """The index-friendly search (trigram prefilter for "first last", ids for typed handles, the page looked
    for in a name-order prefix past the cap) finds exactly what the plain ILIKE conditions find, page by page."""
    from sqlalchemy import or_

    rng = random.Random(3)
    syllables = ["an", "na", "mü", "ll", "er", "o", " ", "_", "%", "jo", "hn"]
    now = datetime.now(UTC)
    session.execute(
        insert(Contact),
        [
            {
                "first_name": "".join(rng.choice(syllables) for _ in range(rng.randrange(1, 4))).strip(),
                "last_name": "".join(rng.choice(syllables) for _ in range(rng.randrange(1, 4))).strip(),
                "email": f"{rng.choice(['anna', 'jo', 'müller'])}{i}@example.com",
                "country": "",
                "city": "",
                "language": "",
                "custom_fields": {},
                "created_at": now,
                "updated_at": now,
            }
            for i in range(160)
        ],
    )
    session.commit()
    admin = make_user("admin")
    monkeypatch.setattr(contact_search, "CONTACTS_COUNT_CAP", 15)
    monkeypatch.setattr(contact_search, "NAME_WALK_ROWS", 40)
    everyone = list(
        session.execute(select(Contact.id).order_by(Contact.last_name, Contact.first_name, Contact.id)).scalars()
    )
    for term in ["an", "anna", "na mü", "o an", "ll er", "jo_n", "an%na", "müller1", "@example", "anna mü", "nn"]:
        like = f"%{term}%"
        plain = [Contact.first_name.ilike(like), Contact.last_name.ilike(like)]
        if " " in term:  # as before 0005: "first last" only for a term with a space
            plain.append((Contact.first_name + " " + Contact.last_name).ilike(like))
        if "@" in term:
            plain.append(Contact.email.ilike(like))
        matching = set(session.execute(select(Contact.id).where(or_(*plain))).scalars())
        want = [cid for cid in everyone if cid in matching]
        got, page = [], 1
        while True:
            result = contact_search.contacts_page(session=session, actor=admin, search=term, page=page, page_size=7)
            got += [row["id"] for row in result.rows]
            if not result.rows or len(got) >= len(want):
                break
            page += 1
        assert got == want, term
        assert result.total == min(len(want), contact_search.CONTACTS_COUNT_CAP + 1), term
