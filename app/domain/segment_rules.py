"""Segment rules (SPEC S7): what a user may write, validated and described here (pure, no I/O).

A rule is {"field": ..., "op": ..., "value": ...}; a segment matches "all" or "any" of its rules.
Rules are evaluated as SQL each time a segment is used, so a contact added later that matches is in
the segment; the translation to one SQL condition over `Contact` is
`app.services.audiences.segment_sql.rules_condition`.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

MATCHES = ("all", "any")
MAX_RULES = 20
MAX_IN_VALUES = 500
MAX_VALUE_LENGTH = 200

TEXT, DATE = "text", "date"
FIELDS: dict[str, str] = {
    "first_name": TEXT,
    "last_name": TEXT,
    "email": TEXT,
    "country": TEXT,
    "city": TEXT,
    "language": TEXT,
    "created_at": DATE,
}
FIELD_LABELS = {
    "first_name": "First name",
    "last_name": "Last name",
    "email": "Email",
    "country": "Country",
    "city": "City",
    "language": "Language",
    "created_at": "Created",
}
CUSTOM_PREFIX = "custom."
_CUSTOM_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_ \-]{0,63}$")

OPERATORS: dict[str, str] = {
    "equals": "equals",
    "not_equals": "does not equal",
    "contains": "contains",
    "in": "is one of",
    "is_empty": "is empty",
    "is_not_empty": "is not empty",
    "before": "is before",
    "after": "is after",
}
TEXT_OPERATORS = ("equals", "not_equals", "contains", "in", "is_empty", "is_not_empty")
DATE_OPERATORS = ("before", "after", "is_empty", "is_not_empty")
# Custom fields are free text; ISO dates stored there (YYYY-MM-DD...) can also be compared by date.
CUSTOM_OPERATORS = TEXT_OPERATORS + ("before", "after")
NO_VALUE_OPERATORS = ("is_empty", "is_not_empty")


class SegmentRuleError(ValueError):
    """A rule a user wrote cannot be used; the message says which and why."""


def field_kind(name: str) -> str:
    return TEXT if name.startswith(CUSTOM_PREFIX) else FIELDS[name]


def operators_for(name: str) -> tuple[str, ...]:
    if name.startswith(CUSTOM_PREFIX):
        return CUSTOM_OPERATORS
    return DATE_OPERATORS if FIELDS.get(name) == DATE else TEXT_OPERATORS


def _field(raw: Any, n: int) -> str:
    name = str(raw or "").strip()
    if name.lower() in FIELDS:
        return name.lower()
    if name.lower().startswith(CUSTOM_PREFIX):
        key = name[len(CUSTOM_PREFIX) :].strip()
        if not _CUSTOM_KEY.match(key):
            raise SegmentRuleError(
                f"Rule {n}: custom field name {key!r} is not valid "
                "(letters, digits, spaces, _ and -; at most 64 characters)"
            )
        return CUSTOM_PREFIX + key
    if not name:
        raise SegmentRuleError(f"Rule {n}: choose a field")
    raise SegmentRuleError(f"Rule {n}: unknown field {name!r} (use {', '.join(FIELDS)} or custom.<name>)")


def _parse_date(value: Any, n: int) -> str:
    text = str(value if value is not None else "").strip()
    if not text:
        raise SegmentRuleError(f"Rule {n}: enter a date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(text[:10]).isoformat()
    except ValueError:
        raise SegmentRuleError(f"Rule {n}: {text[:40]!r} is not a date (use YYYY-MM-DD)") from None


def _text_value(value: Any, n: int, label: str) -> str:
    if isinstance(value, (list, tuple, dict)):
        raise SegmentRuleError(f"Rule {n}: {label} needs a single value")
    text = str(value if value is not None else "").strip()
    if not text:
        raise SegmentRuleError(f"Rule {n}: {label} needs a value")
    if len(text) > MAX_VALUE_LENGTH:
        raise SegmentRuleError(f"Rule {n}: the value is longer than {MAX_VALUE_LENGTH} characters")
    return text


def _in_values(value: Any, n: int) -> list[str]:
    items = value if isinstance(value, (list, tuple)) else str(value if value is not None else "").split(",")
    values: list[str] = []
    for item in items:
        if isinstance(item, (list, tuple, dict)):
            raise SegmentRuleError(f"Rule {n}: 'is one of' takes a list of values")
        text = str(item if item is not None else "").strip()
        if text and text not in values:
            if len(text) > MAX_VALUE_LENGTH:
                raise SegmentRuleError(f"Rule {n}: a value is longer than {MAX_VALUE_LENGTH} characters")
            values.append(text)
    if not values:
        raise SegmentRuleError(f"Rule {n}: 'is one of' needs at least one value (separate them with commas)")
    if len(values) > MAX_IN_VALUES:
        raise SegmentRuleError(f"Rule {n}: 'is one of' takes at most {MAX_IN_VALUES} values")
    return values


def validate_match(match: Any) -> str:
    text = str(match or "").strip().lower()
    if text not in MATCHES:
        raise SegmentRuleError('Match must be "all" or "any" of the rules')
    return text


def validate_rules(rules: Any, match: Any = "all") -> list[dict]:
    """Return the rules normalised ({field, op, value}); raise SegmentRuleError on the first bad one."""
    validate_match(match)
    if rules is None:
        return []
    if not isinstance(rules, (list, tuple)):
        raise SegmentRuleError("Rules must be a list")
    if len(rules) > MAX_RULES:
        raise SegmentRuleError(f"A segment has at most {MAX_RULES} rules")
    clean: list[dict] = []
    for n, rule in enumerate(rules, start=1):
        if not isinstance(rule, dict):
            raise SegmentRuleError(f"Rule {n} is not a rule (field, operator, value)")
        name = _field(rule.get("field"), n)
        op = str(rule.get("op") or "").strip().lower()
        if op not in OPERATORS:
            raise SegmentRuleError(f"Rule {n}: unknown operator {op or '(none)'!r} (use {', '.join(OPERATORS)})")
        if op not in operators_for(name):
            if op in ("before", "after"):
                raise SegmentRuleError(
                    f"Rule {n}: '{OPERATORS[op]}' works only with dates (created_at or a custom date field)"
                )
            raise SegmentRuleError(f"Rule {n}: '{OPERATORS[op]}' does not apply to {name}")
        value: Any = rule.get("value")
        if op in NO_VALUE_OPERATORS:
            value = ""
        elif op == "in":
            value = _in_values(value, n)
        elif op in ("before", "after"):
            value = _parse_date(value, n)
        else:
            value = _text_value(value, n, f"'{OPERATORS[op]}'")
        clean.append({"field": name, "op": op, "value": value})
    return clean


def describe_rule(rule: dict) -> str:
    """A rule as a short sentence for lists and summaries."""
    name = rule.get("field", "")
    label = FIELD_LABELS.get(name, name[len(CUSTOM_PREFIX) :] if name.startswith(CUSTOM_PREFIX) else name)
    op = rule.get("op", "")
    value = rule.get("value", "")
    if isinstance(value, (list, tuple)):
        value = ", ".join(str(v) for v in value)
    return f"{label} {OPERATORS.get(op, op)} {value}".strip()


__all__ = [
    "FIELDS",
    "OPERATORS",
    "MATCHES",
    "SegmentRuleError",
    "validate_rules",
    "validate_match",
    "describe_rule",
    "operators_for",
    "field_kind",
]
