"""Segments (SPEC S7): saved rules, evaluated as SQL whenever the segment is used.

Viewing and counting need audiences:view; creating, changing and deleting need audiences:manage
(basic users see segments but never shape them). Every change is written to the audit log.
Functions flush but do not commit: the caller's unit of work (`session_scope`) decides.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlmodel import Session

from app.domain import permissions as perm
from app.domain.segment_rules import SegmentRuleError, describe_rule, validate_match, validate_rules
from app.models import Campaign, Segment, User
from app.services.access import get_or_raise, require
from app.services.accounts import audit
from app.services.audiences.summary import segment_contact_ids
from app.services.paging import fmt_time
from app.timeutil import utcnow

MAX_NAME = 120
MAX_DESCRIPTION = 500


class SegmentError(ValueError):
    """Bad input for a segment operation; the message is shown as is."""


def _clean_name(session: Session, name, exclude_id: int | None = None) -> str:
    text = " ".join(str(name or "").split())
    if not text:
        raise SegmentError("Give the segment a name.")
    if len(text) > MAX_NAME:
        raise SegmentError(f"A segment name has at most {MAX_NAME} characters.")
    query = select(Segment.id).where(func.lower(Segment.name) == text.lower())
    if exclude_id is not None:
        query = query.where(Segment.id != exclude_id)
    if session.execute(query).first() is not None:
        raise SegmentError(f'A segment named "{text}" already exists; choose another name.')
    return text


def _clean_description(description) -> str:
    text = str(description or "").strip()
    if len(text) > MAX_DESCRIPTION:
        raise SegmentError(f"A description has at most {MAX_DESCRIPTION} characters.")
    return text


def _clean_rules(rules, match) -> tuple[list[dict], str]:
    try:
        match = validate_match(match)
        clean = validate_rules(rules, match)
    except SegmentRuleError as exc:
        raise SegmentError(str(exc)) from exc
    if not clean:
        raise SegmentError("Add at least one rule.")
    return clean, match


def _get(session: Session, segment_id) -> Segment:
    return get_or_raise(session, Segment, segment_id, SegmentError, "That segment no longer exists.")


def create_segment(
    *, session: Session, actor: User, name: str, rules: list, match: str = "all", description: str = ""
) -> Segment:
    actor = require(session, actor, perm.AUDIENCES_MANAGE)
    name = _clean_name(session, name)
    description = _clean_description(description)
    clean, match = _clean_rules(rules, match)
    segment = Segment(name=name, description=description, match=match, rules=clean, created_by_id=actor.id)
    session.add(segment)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="segment.create",
        target_type="segment",
        target_id=segment.id,
        detail={"name": name, "match": match, "rules": clean},
    )
    return segment


def update_segment(
    *,
    session: Session,
    actor: User,
    segment_id: int,
    name: str | None = None,
    rules: list | None = None,
    match: str | None = None,
    description: str | None = None,
) -> Segment:
    """Change what is given; None leaves a part as it is. All checks pass before anything changes."""
    actor = require(session, actor, perm.AUDIENCES_MANAGE)
    segment = _get(session, segment_id)
    new_name = segment.name if name is None else _clean_name(session, name, exclude_id=segment.id)
    new_description = segment.description if description is None else _clean_description(description)
    new_rules, new_match = _clean_rules(
        segment.rules if rules is None else rules, segment.match if match is None else match
    )
    before = {"name": segment.name, "match": segment.match, "rules": segment.rules}
    segment.name, segment.description, segment.match = new_name, new_description, new_match
    segment.rules = new_rules  # a new list object, so the JSON column is seen as changed
    segment.updated_at = utcnow()
    session.add(segment)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="segment.update",
        target_type="segment",
        target_id=segment.id,
        detail={"before": before, "after": {"name": new_name, "match": new_match, "rules": new_rules}},
    )
    return segment


def delete_segment(*, session: Session, actor: User, segment_id: int) -> None:
    actor = require(session, actor, perm.AUDIENCES_MANAGE)
    segment = _get(session, segment_id)
    used = session.execute(select(Campaign.name).where(Campaign.audience_segment_id == segment.id)).scalars().all()
    if used:
        raise SegmentError(
            f'This segment is the audience of {len(used)} campaign(s) (e.g. "{used[0]}"); it cannot be deleted.'
        )
    audit.record(
        session=session,
        actor=actor,
        action="segment.delete",
        target_type="segment",
        target_id=segment.id,
        detail={"name": segment.name, "match": segment.match, "rules": segment.rules},
    )
    session.delete(segment)
    session.flush()


def count_segment(*, session: Session, actor: User, rules: list, match: str = "all") -> int:
    """The live count while editing: contacts matching the (unsaved) rules right now."""
    require(session, actor, perm.AUDIENCES_VIEW)
    try:
        ids = segment_contact_ids(rules, match)
    except SegmentRuleError as exc:
        raise SegmentError(str(exc)) from exc
    return int(session.execute(select(func.count()).select_from(ids.subquery())).scalar_one())


def get_segment(*, session: Session, actor: User, segment_id: int) -> dict:
    require(session, actor, perm.AUDIENCES_VIEW)
    s = _get(session, segment_id)
    return {
        "id": s.id,
        "name": s.name,
        "description": s.description,
        "match": s.match,
        "rules": list(s.rules),
        "summary": _rules_text(s),
    }


def _rules_text(segment: Segment) -> str:
    joiner = " and " if segment.match == "all" else " or "
    return joiner.join(describe_rule(r) for r in segment.rules)


def list_segments(*, session: Session, actor: User, with_counts: bool = True) -> list[dict]:
    """Every segment with its rules as text and, unless asked not to, its current contact count."""
    require(session, actor, perm.AUDIENCES_VIEW)
    rows = []
    for s in session.execute(select(Segment).order_by(Segment.name)).scalars().all():
        count: int | str = ""
        if with_counts:
            try:
                count = int(
                    session.execute(
                        select(func.count()).select_from(segment_contact_ids(s.rules, s.match).subquery())
                    ).scalar_one()
                )
            except SegmentRuleError:
                count = ""  # a rule saved by an older version that no longer validates: show no count
        rows.append(
            {
                "id": s.id,
                "name": s.name,
                "description": s.description,
                "match": s.match,
                "rules": _rules_text(s),
                "contacts": count,
                "updated": fmt_time(s.updated_at),
            }
        )
    return rows
