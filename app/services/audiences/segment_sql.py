"""Segment rules as SQL: one boolean condition over `Contact` for a segment's (validated) rules.

The rules themselves (fields, operators, validation, wording) are `app.domain.segment_rules`; this module
only translates them. Custom fields are read with SQLAlchemy's JSON path extraction (`json_extract` / `->>`),
text comparisons ignore case. On PostgreSQL, "equals", "is one of" and "is not empty" on a custom field are
written instead as an overlap with `contacts.custom_terms` (generated from custom_fields, migration 0016),
which ix_contacts_custom_terms (GIN) answers without parsing every contact's JSON. It selects exactly the
same contacts (tests/integration/test_contacts_search_speed.py compares both forms on random bases). The
choice is made when the statement is compiled (`_ByDialect`), so callers need not know the database.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Boolean, and_, func, literal, or_, true
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import Text

from app.domain.segment_rules import CUSTOM_PREFIX, DATE, field_kind, validate_match, validate_rules
from app.models import CONTACT_CUSTOM_TERMS, Contact

# Terms longer than this are not in custom_terms (0016's hubcast_custom_terms leaves them out).
_MAX_TERM = 500


class _ByDialect(ColumnElement):
    """A boolean condition written one way for PostgreSQL and another for every other database."""

    type = Boolean()
    inherit_cache = True
    _is_implicitly_boolean = True
    _traverse_internals = [
        ("postgresql", InternalTraversal.dp_clauseelement),
        ("default", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, postgresql: ColumnElement, default: ColumnElement) -> None:
        self.postgresql, self.default = postgresql, default


@compiles(_ByDialect)
def _by_dialect_default(element: _ByDialect, compiler, **kw) -> str:
    return compiler.process(element.default.self_group(), **kw)


@compiles(_ByDialect, "postgresql")
def _by_dialect_postgresql(element: _ByDialect, compiler, **kw) -> str:
    return compiler.process(element.postgresql.self_group(), **kw)


def custom_term(key: str, value: str) -> str:
    """The term custom_terms holds when lower(custom_fields ->> key) = value (value lower-cased)."""
    return f"{len(key)}:{key}={value}"


def custom_set_term(key: str) -> str:
    """The term custom_terms holds when custom_fields ->> key is neither null nor ''."""
    return f"{len(key)}:{key}"


def _indexed_custom(key: str, terms: list[str], default: ColumnElement) -> ColumnElement[bool]:
    """`default` on SQLite; on PostgreSQL the overlap of the contact's custom_terms (generated from
    custom_fields, migration 0016) with `terms`, which ix_contacts_custom_terms answers exactly."""
    if not terms or any(len(t) > _MAX_TERM for t in terms):
        return default
    return _ByDialect(CONTACT_CUSTOM_TERMS.op("&&", is_comparison=True)(literal(terms, ARRAY(Text))), default)


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
    key = name[len(CUSTOM_PREFIX) :] if name.startswith(CUSTOM_PREFIX) else None
    if op == "equals":
        cond = low == norm(value)
        return cond if key is None else _indexed_custom(key, [custom_term(key, norm(value))], cond)
    if op == "not_equals":
        return or_(col.is_(None), low != norm(value))
    if op == "contains":
        return low.contains(norm(value), autoescape=True)
    if op == "in":
        cond = low.in_([norm(v) for v in value])
        terms = sorted({custom_term(key, norm(v)) for v in value}) if key is not None else []
        return cond if key is None else _indexed_custom(key, terms, cond)
    if op == "is_empty":
        return or_(col.is_(None), col == "")
    if op == "is_not_empty":
        cond = and_(col.is_not(None), col != "")
        return cond if key is None else _indexed_custom(key, [custom_set_term(key)], cond)
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
