"""Segment rules as SQL: one boolean condition over `Contact` for a segment's (validated) rules.

The rules themselves (fields, operators, validation, wording) are `app.domain.segment_rules`; this module
only translates them. The same expression runs on SQLite and PostgreSQL: custom fields are read with
SQLAlchemy's JSON path extraction (`json_extract` / `->>`), text comparisons ignore case.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, true
from sqlalchemy.sql.elements import ColumnElement

from app.domain.segment_rules import CUSTOM_PREFIX, DATE, field_kind, validate_match, validate_rules
from app.models import Contact


def _column(name: str) -> ColumnElement:
    if name.startswith(CUSTOM_PREFIX):
        return Contact.custom_fields[name[len(CUSTOM_PREFIX) :]].as_string()
    return getattr(Contact, name)


def _day_start(iso: str) -> datetime:
    return datetime.combine(date.fromisoformat(iso), time.min, tzinfo=UTC)


def _text_condition(name: str, op: str, value: Any) -> ColumnElement[bool]:
    col = _column(name)
    if name == "country":
        # Country codes are stored upper-case (ISO 3166-1 alpha-2): comparing the raw column keeps the
        # ix_contacts_country index usable, which lower() would not.
        low, norm = col, (lambda v: v.upper())
    else:
        low, norm = func.lower(col), (lambda v: v.lower())
    if op == "equals":
        return low == norm(value)
    if op == "not_equals":
        return or_(col.is_(None), low != norm(value))
    if op == "contains":
        return low.contains(norm(value), autoescape=True)
    if op == "in":
        return low.in_([norm(v) for v in value])
    if op == "is_empty":
        return or_(col.is_(None), col == "")
    if op == "is_not_empty":
        return and_(col.is_not(None), col != "")
    # before / after on a custom field holding an ISO date: text order is date order.
    next_day = (date.fromisoformat(value) + timedelta(days=1)).isoformat()
    iso_like = col.like("____-__-__%")
    return and_(iso_like, col < value) if op == "before" else and_(iso_like, col >= next_day)


def _date_condition(name: str, op: str, value: Any) -> ColumnElement[bool]:
    col = _column(name)
    if op == "is_empty":
        return col.is_(None)
    if op == "is_not_empty":
        return col.is_not(None)
    start = _day_start(value)
    # "after 2025-03-01" means from the next day on: the whole named day is neither before nor after.
    return col < start if op == "before" else col >= start + timedelta(days=1)


def rule_condition(rule: dict) -> ColumnElement[bool]:
    name, op, value = rule["field"], rule["op"], rule.get("value")
    if field_kind(name) == DATE:
        return _date_condition(name, op, value)
    return _text_condition(name, op, value)


def rules_condition(rules: Any, match: Any = "all") -> ColumnElement[bool]:
    """One boolean SQL expression over Contact; no rules means every contact."""
    clean = validate_rules(rules, match)
    if not clean:
        return true()
    parts = [rule_condition(r) for r in clean]
    if len(parts) == 1:
        return parts[0]
    return and_(*parts) if validate_match(match) == "all" else or_(*parts)
