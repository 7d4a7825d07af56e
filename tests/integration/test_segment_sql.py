"""Segment rules as SQL (app/services/audiences/segment_sql.py) on SQLite and PostgreSQL.

The SQL runs here against an in-memory SQLite contacts table; tests/integration/test_segments.py runs the
same rules on the fixture database, which is PostgreSQL under `make test-pg`. What a user may write is
tests/unit/test_segment_rules.py.
"""

from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from app.models import Contact
from app.services.audiences.segment_sql import rules_condition


def rule(field, op, value=""):
    return {"field": field, "op": op, "value": value}


@pytest.fixture()
def contacts():
    engine = create_engine("sqlite://")
    Contact.__table__.create(engine)
    people = [
        Contact(
            first_name="Ann",
            last_name="Lee",
            email="ann@example.com",
            country="AU",
            city="Sydney",
            language="en",
            custom_fields={"tier": "Gold", "signup": "2024-02-10", "visits": 3},
            created_at=datetime(2025, 1, 5, 10, tzinfo=UTC),
        ),
        Contact(
            first_name="Bruno",
            last_name="Silva",
            email="",
            country="BR",
            city="São Paulo",
            language="pt_BR",
            custom_fields={"tier": "silver", "signup": "2025-06-01"},
            created_at=datetime(2025, 3, 1, 23, 59, tzinfo=UTC),
        ),
        Contact(
            first_name="Chloé",
            last_name="Martin",
            email="chloe@example.fr",
            country="FR",
            city="Paris",
            language="fr",
            custom_fields={},
            created_at=datetime(2025, 3, 2, tzinfo=UTC),
        ),
        Contact(
            first_name="Dan",
            last_name="O'Neil",
            email="dan@100%.com",
            country="AU",
            city="Perth",
            language="en",
            custom_fields={"tier": ""},
            created_at=datetime(2025, 4, 1, tzinfo=UTC),
        ),
    ]
    with Session(engine) as session:
        session.add_all(people)
        session.commit()
        yield session


def names(session, rules, match="all"):
    return sorted(session.execute(select(Contact.first_name).where(rules_condition(rules, match))).scalars())


@pytest.mark.parametrize(
    "rules, match, expected",
    [
        ([rule("country", "equals", "au")], "all", ["Ann", "Dan"]),
        ([rule("city", "equals", "SYDNEY")], "all", ["Ann"]),
        ([rule("city", "not_equals", "sydney")], "all", ["Bruno", "Chloé", "Dan"]),
        ([rule("email", "contains", "EXAMPLE")], "all", ["Ann", "Chloé"]),
        ([rule("email", "contains", "100%")], "all", ["Dan"]),  # % is a character, not a wildcard
        ([rule("country", "in", "fr, br")], "all", ["Bruno", "Chloé"]),
        ([rule("email", "is_empty")], "all", ["Bruno"]),
        ([rule("email", "is_not_empty")], "all", ["Ann", "Chloé", "Dan"]),
        ([rule("created_at", "before", "2025-03-01")], "all", ["Ann"]),
        ([rule("created_at", "after", "2025-03-01")], "all", ["Chloé", "Dan"]),  # the named day is neither
        ([rule("custom.tier", "equals", "gold")], "all", ["Ann"]),
        ([rule("custom.tier", "not_equals", "gold")], "all", ["Bruno", "Chloé", "Dan"]),  # missing key counts as "not"
        ([rule("custom.tier", "in", ["GOLD", "silver"])], "all", ["Ann", "Bruno"]),
        ([rule("custom.tier", "is_empty")], "all", ["Chloé", "Dan"]),
        ([rule("custom.tier", "is_not_empty")], "all", ["Ann", "Bruno"]),
        ([rule("custom.signup", "before", "2025-01-01")], "all", ["Ann"]),
        ([rule("custom.signup", "after", "2025-01-01")], "all", ["Bruno"]),
        ([rule("custom.tier", "after", "2025-01-01")], "all", []),  # "Gold" is not a date
        ([rule("custom.visits", "equals", "3")], "all", ["Ann"]),  # JSON numbers compare as text
        ([rule("country", "equals", "AU"), rule("city", "equals", "Perth")], "all", ["Dan"]),
        ([rule("country", "equals", "FR"), rule("city", "equals", "Perth")], "any", ["Chloé", "Dan"]),
        ([], "all", ["Ann", "Bruno", "Chloé", "Dan"]),
    ],
)
def test_rules_select_the_expected_contacts_on_sqlite(contacts, rules, match, expected):
    assert names(contacts, rules, match) == expected


def test_the_same_rules_compile_for_postgresql():
    condition = rules_condition(
        [
            rule("custom.tier", "equals", "gold"),
            rule("country", "in", "FR,DE"),
            rule("created_at", "after", "2025-01-01"),
        ],
        "all",
    )
    sql = str(condition.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    # "equals" on a custom field reads ix_contacts_custom_terms there (migration 0016; same contacts as
    # `lower(custom_fields ->> 'tier') = 'gold'`, tests/integration/test_contacts_search_speed.py).
    assert "contacts.custom_terms && ARRAY['4:tier=gold']" in sql
    assert "contacts.country IN ('FR', 'DE')" in sql
    contains = rules_condition([rule("custom.tier", "contains", "go")], "all")
    assert "custom_fields ->> 'tier'" in str(
        contains.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    )
    lite = str(condition.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    assert "JSON_EXTRACT(contacts.custom_fields, '$.\"tier\"')" in lite


def test_values_are_bound_not_pasted_into_sql(contacts):
    nasty = "x' OR '1'='1"
    assert names(contacts, [rule("city", "equals", nasty)]) == []
    assert names(contacts, [rule("custom.tier", "contains", nasty)]) == []
