"""Segment rules (SPEC S7): what a user may write (pure validation; the SQL it becomes is
tests/integration/test_segment_sql.py).
"""

import pytest

from app.domain.segment_rules import FIELDS, OPERATORS, SegmentRuleError, validate_rules


def rule(field, op, value=""):
    return {"field": field, "op": op, "value": value}


# --- validation -------------------------------------------------------------------------------


def test_fields_and_operators_on_offer():
    assert set(FIELDS) == {"first_name", "last_name", "email", "country", "city", "language", "created_at"}
    assert set(OPERATORS) == {"equals", "not_equals", "contains", "in", "is_empty", "is_not_empty", "before", "after"}


def test_rules_are_normalised():
    clean = validate_rules(
        [
            rule(" Country ", "EQUALS", " au "),
            rule("custom.tier", "in", "gold, silver ,,gold"),
            rule("created_at", "after", "2025-03-01"),
            rule("email", "is_empty", "ignored"),
        ],
        "any",
    )
    assert clean == [
        rule("country", "equals", "au"),
        rule("custom.tier", "in", ["gold", "silver"]),
        rule("created_at", "after", "2025-03-01"),
        rule("email", "is_empty", ""),
    ]


def test_in_accepts_a_list():
    assert validate_rules([rule("country", "in", ["FR", "DE"])], "all")[0]["value"] == ["FR", "DE"]


@pytest.mark.parametrize(
    "rules, match, message",
    [
        ([rule("country", "equals", "AU")], "some", 'Match must be "all" or "any" of the rules'),
        ("country=AU", "all", "Rules must be a list"),
        (["country"], "all", "Rule 1 is not a rule (field, operator, value)"),
        (
            [rule("age", "equals", "3")],
            "all",
            "Rule 1: unknown field 'age' (use first_name, last_name, email, country, "
            "city, language, created_at or custom.<name>)",
        ),
        ([rule("", "equals", "3")], "all", "Rule 1: choose a field"),
        (
            [rule("country", "like", "A%")],
            "all",
            "Rule 1: unknown operator 'like' (use equals, not_equals, contains, in, "
            "is_empty, is_not_empty, before, after)",
        ),
        (
            [rule("country", "equals", "AU"), rule("country", "before", "2024-01-01")],
            "all",
            "Rule 2: 'is before' works only with dates (created_at or a custom date field)",
        ),
        ([rule("created_at", "contains", "2024")], "all", "Rule 1: 'contains' does not apply to created_at"),
        ([rule("city", "equals", "  ")], "all", "Rule 1: 'equals' needs a value"),
        ([rule("city", "equals", ["a", "b"])], "all", "Rule 1: 'equals' needs a single value"),
        (
            [rule("city", "in", " , ")],
            "all",
            "Rule 1: 'is one of' needs at least one value (separate them with commas)",
        ),
        ([rule("created_at", "before", "yesterday")], "all", "Rule 1: 'yesterday' is not a date (use YYYY-MM-DD)"),
        (
            [rule("custom.a;drop", "equals", "x")],
            "all",
            "Rule 1: custom field name 'a;drop' is not valid (letters, digits, spaces, _ and -; at most 64 characters)",
        ),
        ([rule("city", "equals", "x" * 201)], "all", "Rule 1: the value is longer than 200 characters"),
    ],
)
def test_bad_rules_get_a_specific_message(rules, match, message):
    with pytest.raises(SegmentRuleError) as info:
        validate_rules(rules, match)
    assert str(info.value) == message


def test_too_many_rules():
    with pytest.raises(SegmentRuleError, match="at most 20 rules"):
        validate_rules([rule("city", "equals", "x")] * 21, "all")
