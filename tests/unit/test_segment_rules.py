"""Segment rules (SPEC S7): what a user may write, and the SQL it becomes on SQLite and PostgreSQL.

The SQL runs here against an in-memory SQLite contacts table; tests/integration/test_segments.py runs the
same rules on the fixture database, which is PostgreSQL under `make test-pg`.
"""

from datetime import datetime, timezone

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from app.domain.segment_rules import FIELDS, OPERATORS, SegmentRuleError, rules_condition, validate_rules
from app.models import Contact


def rule(field, op, value=""):
    return {"field": field, "op": op, "value": value}


# --- validation -------------------------------------------------------------------------------

def test_fields_and_operators_on_offer():
    assert set(FIELDS) == {"first_name", "last_name", "email", "country", "city", "language", "created_at"}
    assert set(OPERATORS) == {"equals", "not_equals", "contains", "in", "is_empty", "is_not_empty", "before", "after"}


def test_rules_are_normalised():
    clean = validate_rules([rule(" Country ", "EQUALS", " au "), rule("custom.tier", "in", "gold, silver ,,gold"),
                            rule("created_at", "after", "2025-03-01"), rule("email", "is_empty", "ignored")], "any")
    assert clean == [rule("country", "equals", "au"), rule("custom.tier", "in", ["gold", "silver"]),
                     rule("created_at", "after", "2025-03-01"), rule("email", "is_empty", "")]


def test_in_accepts_a_list():
    assert validate_rules([rule("country", "in", ["FR", "DE"])], "all")[0]["value"] == ["FR", "DE"]


@pytest.mark.parametrize("rules, match, message", [
    ([rule("country", "equals", "AU")], "some", 'Match must be "all" or "any" of the rules'),
    ("country=AU", "all", "Rules must be a list"),
    (["country"], "all", "Rule 1 is not a rule (field, operator, value)"),
    ([rule("age", "equals", "3")], "all", "Rule 1: unknown field 'age' (use first_name, last_name, email, country, "
                                          "city, language, created_at or custom.<name>)"),
    ([rule("", "equals", "3")], "all", "Rule 1: choose a field"),
    ([rule("country", "like", "A%")], "all", "Rule 1: unknown operator 'like' (use equals, not_equals, contains, in, "
                                              "is_empty, is_not_empty, before, after)"),
    ([rule("country", "equals", "AU"), rule("country", "before", "2024-01-01")], "all",
     "Rule 2: 'is before' works only with dates (created_at or a custom date field)"),
    ([rule("created_at", "contains", "2024")], "all", "Rule 1: 'contains' does not apply to created_at"),
    ([rule("city", "equals", "  ")], "all", "Rule 1: 'equals' needs a value"),
    ([rule("city", "equals", ["a", "b"])], "all", "Rule 1: 'equals' needs a single value"),
    ([rule("city", "in", " , ")], "all", "Rule 1: 'is one of' needs at least one value (separate them with commas)"),
    ([rule("created_at", "before", "yesterday")], "all", "Rule 1: 'yesterday' is not a date (use YYYY-MM-DD)"),
    ([rule("custom.a;drop", "equals", "x")], "all", "Rule 1: custom field name 'a;drop' is not valid "
                                                    "(letters, digits, spaces, _ and -; at most 64 characters)"),
    ([rule("city", "equals", "x" * 201)], "all", "Rule 1: the value is longer than 200 characters"),
])
def test_bad_rules_get_a_specific_message(rules, match, message):
    with pytest.raises(SegmentRuleError) as info:
        validate_rules(rules, match)
    assert str(info.value) == message


def test_too_many_rules():
    with pytest.raises(SegmentRuleError, match="at most 20 rules"):
        validate_rules([rule("city", "equals", "x")] * 21, "all")


# --- rules -> SQL -----------------------------------------------------------------------------

@pytest.fixture()
def contacts():
    engine = create_engine("sqlite://")
    Contact.__table__.create(engine)
    people = [
        Contact(first_name="Ann", last_name="Lee", email="ann@example.com", country="AU", city="Sydney",
                language="en", custom_fields={"tier": "Gold", "signup": "2024-02-10", "visits": 3},
                created_at=datetime(2025, 1, 5, 10, tzinfo=timezone.utc)),
        Contact(first_name="Bruno", last_name="Silva", email="", country="BR", city="São Paulo",
                language="pt_BR", custom_fields={"tier": "silver", "signup": "2025-06-01"},
                created_at=datetime(2025, 3, 1, 23, 59, tzinfo=timezone.utc)),
        Contact(first_name="Chloé", last_name="Martin", email="chloe@example.fr", country="FR", city="Paris",
                language="fr", custom_fields={}, created_at=datetime(2025, 3, 2, tzinfo=timezone.utc)),
        Contact(first_name="Dan", last_name="O'Neil", email="dan@100%.com", country="AU", city="Perth",
                language="en", custom_fields={"tier": ""}, created_at=datetime(2025, 4, 1, tzinfo=timezone.utc)),
    ]
    with Session(engine) as session:
        session.add_all(people)
        session.commit()
        yield session


def names(session, rules, match="all"):
    return sorted(session.execute(select(Contact.first_name).where(rules_condition(rules, match))).scalars())


@pytest.mark.parametrize("rules, match, expected", [
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
])
def test_rules_select_the_expected_contacts_on_sqlite(contacts, rules, match, expected):
    assert names(contacts, rules, match) == expected


def test_the_same_rules_compile_for_postgresql():
    condition = rules_condition([rule("custom.tier", "equals", "gold"), rule("country", "in", "FR,DE"),
                                 rule("created_at", "after", "2025-01-01")], "all")
    sql = str(condition.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    assert "custom_fields ->> 'tier'" in sql and "contacts.country IN ('FR', 'DE')" in sql
    lite = str(condition.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    assert "JSON_EXTRACT(contacts.custom_fields, '$.\"tier\"')" in lite


def test_values_are_bound_not_pasted_into_sql(contacts):
    nasty = "x' OR '1'='1"
    assert names(contacts, [rule("city", "equals", nasty)]) == []
    assert names(contacts, [rule("custom.tier", "contains", nasty)]) == []
