"""Starting, scheduling, pausing, resuming and cancelling a campaign.

Starting **freezes the audience**: the list/segment members with a subscribed WhatsApp identity (or
the CSV's valid, de-duplicated numbers, minus people who unsubscribed), each with their template
values resolved, become recipient rows, bulk-inserted in the same transaction that moves the campaign
to Sending. That status change is a conditional UPDATE (`WHERE status IN (draft, scheduled)`), so two
schedulers or two clicks can never both start it: the loser sees rowcount 0 and changes nothing.

These functions COMMIT (unlike most services): each hands work to other processes (RQ jobs, the
scheduler tick), which must see the change. Jobs are enqueued after the commit; if Redis is down at
that moment the sweeper re-enqueues the campaign later (the database says it is Sending).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from app.domain import permissions as perm
from app.domain.campaign_status import (
    CANCELLED,
    DRAFT,
    PAUSED,
    R_QUEUED,
    R_SKIPPED,
    SCHEDULED,
    SENDING,
    STATUS_LABELS,
    check_transition,
)
from app.domain.variables import CONTACT_FIELDS, missing_title, resolve, unmapped_keys
from app.models import AudienceUpload, Campaign, CampaignRecipient, Channel, Contact, ContactIdentity, Template, User
from app.services.accounts import audit
from app.services.sending.progress import finish_if_done, refresh_counters
from app.services.sending.batch import enqueue_lanes, error_stats_key, is_sqlite
from app.services.sending.config import sending_config
from app.timeutil import utcnow
from app.whatsapp.components import clean_parameter_text, template_variables

log = logging.getLogger(__name__)
R = CampaignRecipient.__table__
_INSERT_CHUNK = 5000


class SendingError(ValueError):
    """The campaign cannot do that now; the message is safe to show to the user."""


# --- who may ------------------------------------------------------------------------------------

def _sender(session: Session, actor: User | None) -> User:
    """Re-read the actor: a deactivated user or a role change takes effect at once."""
    if actor is None or getattr(actor, "id", None) is None:
        raise perm.NotAuthenticated()
    user = session.get(User, actor.id)
    if user is None or not user.is_active:
        raise perm.NotAuthenticated()
    perm.require(user.role, perm.CAMPAIGNS_SEND)
    return user


def _campaign(session: Session, campaign_id: Any) -> Campaign:
    try:
        cid = int(campaign_id)
    except (TypeError, ValueError):
        raise SendingError("That campaign does not exist.") from None
    campaign = session.get(Campaign, cid)
    if campaign is None:
        raise SendingError("That campaign does not exist.")
    session.refresh(campaign)
    return campaign


def _label(status: str) -> str:
    return STATUS_LABELS.get(status, status)


# --- readiness ------------------------------------------------------------------------------------

def readiness_problems(session: Session, campaign: Campaign) -> list[str]:
    """Why this campaign cannot start now (empty: it can, audience emptiness aside)."""
    problems: list[str] = []
    channel = session.get(Channel, campaign.channel_id) if campaign.channel_id else None
    template = session.get(Template, campaign.template_id) if campaign.template_id else None
    if channel is None:
        problems.append("Choose the WhatsApp channel to send from.")
    elif channel.status != "connected":
        problems.append(f"The channel “{channel.name}” is not connected; test its connection first.")
    if template is None:
        problems.append("Choose a template.")
    else:
        if channel is not None and template.channel_id != channel.id:
            problems.append(f"The template “{template.name}” belongs to another channel.")
        if template.status != "APPROVED":
            problems.append(f"The template “{template.name}” is not approved by WhatsApp "
                            f"(status {template.status}); only approved templates can be sent.")
        keys = [v.key for v in template_variables(template.components or [], template.parameter_format)]
        missing = unmapped_keys(keys, campaign.variable_mapping or {})
        if missing:
            from app.domain.variables import placeholder_label
            problems.append("Say where the value of " + ", ".join(placeholder_label(k) for k in missing)
                            + " comes from.")
    kind = campaign.audience_kind
    if kind == "list" and not campaign.audience_list_id or kind == "segment" and not campaign.audience_segment_id \
            or kind == "csv" and not campaign.audience_upload_id or kind not in ("list", "segment", "csv"):
        problems.append("Choose the audience.")
    return problems


# --- freezing the audience ----------------------------------------------------------------------

_CONTACT_COLUMNS = ("first_name", "last_name", "email", "country", "city", "language", "custom_fields")


def _list_or_segment_rows(session: Session, campaign: Campaign) -> Iterator[tuple[str, int | None, dict, dict]]:
    from app.services.audiences.summary import audience_contact_ids

    ref = campaign.audience_list_id if campaign.audience_kind == "list" else campaign.audience_segment_id
    ids = audience_contact_ids(campaign.audience_kind, ref, session=session)
    query = (
        select(ContactIdentity.address, Contact.id, *(getattr(Contact, c) for c in _CONTACT_COLUMNS))
        .join(Contact, Contact.id == ContactIdentity.contact_id)
        .where(ContactIdentity.channel_type == "whatsapp", ContactIdentity.subscribed.is_(True),
               ContactIdentity.contact_id.in_(ids.scalar_subquery() if hasattr(ids, "scalar_subquery") else ids))
        .order_by(ContactIdentity.id)
    )
    for address, contact_id, *values in session.execute(query).all():
        contact = dict(zip(_CONTACT_COLUMNS, values))
        contact["phone"] = address
        yield address, contact_id, contact, {}


def _simple_plan(keys: list[str], mapping: Any) -> list[tuple[str, str, str]] | None:
    """When every variable comes from a built-in contact field or a fixed text (the common case),
    [(key, contact field or "" for text, cleaned text or fallback)] so that the freeze can read only
    those columns and resolve a row without `variables.resolve`'s generic lookups (same results:
    tests/integration/test_freeze_fast_path.py); None otherwise (custom fields, CSV columns, odd specs)."""
    if not isinstance(mapping, dict):
        return None
    plan = []
    for key in keys:
        spec = mapping.get(key)
        if not isinstance(spec, dict):
            return None
        source = str(spec.get("source") or "").lower()
        if source == "text":
            plan.append((key, "", clean_parameter_text(spec.get("value", spec.get("text", str(spec.get("key") or ""))))
                         or clean_parameter_text(spec.get("fallback"))))
        elif source == "field" and str(spec.get("key") or "") in CONTACT_FIELDS:
            plan.append((key, str(spec.get("key")), clean_parameter_text(spec.get("fallback"))))
        else:
            return None
    return plan


def _clean(value: Any) -> str:
    """clean_parameter_text, skipping its two regex passes when they cannot change anything."""
    if value.__class__ is str and "\n" not in value and "\r" not in value and "\t" not in value \
            and "     " not in value:
        return value.strip()
    return clean_parameter_text(value)


def _simple_rows(session: Session, campaign: Campaign, plan: list[tuple[str, str, str]]) \
        -> Iterator[tuple[str, int | None, dict, tuple[str, ...]]]:
    """(address, contact id, values, missing keys) for a list/segment audience, reading only the
    contact columns the plan uses (same rows and order as `_list_or_segment_rows`)."""
    from app.services.audiences.summary import audience_contact_ids

    ref = campaign.audience_list_id if campaign.audience_kind == "list" else campaign.audience_segment_id
    ids = audience_contact_ids(campaign.audience_kind, ref, session=session)
    fields = sorted({f for _k, f, _t in plan if f and f != "phone"})
    query = (
        select(ContactIdentity.address, Contact.id, *(getattr(Contact, f) for f in fields))
        .join(Contact, Contact.id == ContactIdentity.contact_id)
        .where(ContactIdentity.channel_type == "whatsapp", ContactIdentity.subscribed.is_(True),
               ContactIdentity.contact_id.in_(ids.scalar_subquery() if hasattr(ids, "scalar_subquery") else ids))
        .order_by(ContactIdentity.id)
    )
    position = {f: i + 2 for i, f in enumerate(fields)}
    steps = [(key, position.get(field, 0) if field else -1, text) for key, field, text in plan]
    for row in session.execute(query):
        values: dict[str, str] = {}
        missing: list[str] = []
        for key, pos, text in steps:
            # pos -1: fixed text; 0: the phone (the address); else the contact column
            value = text if pos < 0 else (_clean(row[pos] if pos else row[0]) or text)
            if value:
                values[key] = value
            else:
                missing.append(key)
        yield row[0], row[1], values, tuple(missing)


def _csv_path(upload: AudienceUpload) -> Path:
    path = Path(upload.stored_path)
    if not path.is_absolute() and not path.exists():
        from app.settings import get_settings
        path = get_settings().upload_dir / path
    return path


def _csv_rows(session: Session, campaign: Campaign) -> Iterator[tuple[str, int | None, dict | None, dict]]:
    from app.services.audiences.csv_reader import iter_valid_rows

    upload = session.get(AudienceUpload, campaign.audience_upload_id)
    if upload is None:
        raise SendingError("The campaign's CSV file is gone; upload it again.")
    path = _csv_path(upload)
    if not path.exists():
        raise SendingError("The campaign's CSV file is gone; upload it again.")
    # A CSV is no licence to message someone who said STOP: known unsubscribed numbers are left out.
    unsubscribed = set(session.execute(select(ContactIdentity.address).where(
        ContactIdentity.channel_type == "whatsapp", ContactIdentity.subscribed.is_(False))).scalars())
    for _line, e164, row in iter_valid_rows(path):
        if e164 not in unsubscribed:
            yield e164, None, None, row


def _insert_statement(session: Session):
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(R).on_conflict_do_nothing(index_elements=["campaign_id", "address"])


class _InsertWriter:
    """The portable writer: executemany of INSERT ... ON CONFLICT DO NOTHING, chunk by chunk."""

    def __init__(self, session: Session, campaign_id: int, now: datetime) -> None:
        self._stmt = _insert_statement(session)
        self._conn = session.connection()
        self._campaign_id, self._now = campaign_id, now

    def write(self, rows: list[tuple[str, int | None, dict, str, str]]) -> None:
        self._conn.execute(self._stmt, [
            {"campaign_id": self._campaign_id, "address": address, "contact_id": contact_id, "variables": values,
             "status": status, "error_code": None, "error_title": title, "attempts": 0, "updated_at": self._now}
            for address, contact_id, values, status, title in rows])

    def finish(self) -> None:
        pass


def freeze_audience(session: Session, campaign: Campaign, now: datetime, *, use_copy: bool | None = None) -> int:
    """Insert the campaign's recipient rows (deduplicated by number); returns how many exist now.
    PostgreSQL (psycopg) writes them with COPY (app/services/sending/recipient_copy.py) unless `use_copy` is False
    (bench/freeze.py times both; tests check they store the same rows)."""
    template = session.get(Template, campaign.template_id)
    keys = [v.key for v in template_variables(template.components or [], template.parameter_format)]
    mapping = campaign.variable_mapping or {}
    if use_copy is None:  # COPY through psycopg 3's API; any other driver keeps the portable INSERT
        dialect = session.get_bind().dialect
        use_copy = dialect.name == "postgresql" and dialect.driver == "psycopg"
    if use_copy:
        from app.services.sending.recipient_copy import RecipientCopier
        writer: Any = RecipientCopier(session, campaign.id, now)
    else:
        writer = _InsertWriter(session, campaign.id, now)
    seen: set[str] = set()
    chunk: list[tuple[str, int | None, dict, str, str]] = []
    plan = _simple_plan(keys, mapping) if campaign.audience_kind in ("list", "segment") else None
    if plan is not None:
        for address, contact_id, values, missing in _simple_rows(session, campaign, plan):
            if address in seen:
                continue
            seen.add(address)
            chunk.append((address, contact_id, values, R_SKIPPED if missing else R_QUEUED,
                          missing_title(missing) if missing else ""))
            if len(chunk) >= _INSERT_CHUNK:
                writer.write(chunk)
                chunk = []
    else:
        source = _csv_rows if campaign.audience_kind == "csv" else _list_or_segment_rows
        for address, contact_id, contact, row in source(session, campaign):
            if address in seen:
                continue
            seen.add(address)
            resolution = resolve(keys, mapping, contact=contact, row=row)
            chunk.append((address, contact_id, resolution.values, R_QUEUED if resolution.ok else R_SKIPPED,
                          resolution.error_title))
            if len(chunk) >= _INSERT_CHUNK:
                writer.write(chunk)
                chunk = []
    if chunk:
        writer.write(chunk)
    writer.finish()
    return len(seen)


# --- start ---------------------------------------------------------------------------------------

def start_campaign(*, session: Session, actor: User | None, campaign_id: Any, now: datetime | None = None) -> Campaign:
    """Send now: Draft/Scheduled -> Sending, audience frozen, send jobs enqueued. Commits."""
    user = _sender(session, actor)
    return start_now(session=session, campaign_id=campaign_id, actor=user, now=now)


def start_now(*, session: Session, campaign_id: Any, actor: User | None, now: datetime | None = None,
              from_statuses: tuple[str, ...] = (DRAFT, SCHEDULED)) -> Campaign:
    """The start itself (also used by the scheduler tick, with the user who scheduled it)."""
    now = now or utcnow()
    campaign = _campaign(session, campaign_id)
    if campaign.status not in from_statuses:
        raise SendingError(f"A {_label(campaign.status)} campaign cannot be started.")
    problems = readiness_problems(session, campaign)
    if problems:
        raise SendingError(" ".join(problems))
    session.commit()  # end the read transaction: the write below must take the lock first (SQLite)
    try:
        if is_sqlite(session.get_bind()):
            session.connection().exec_driver_sql("BEGIN IMMEDIATE")
        for status in from_statuses:
            check_transition(status, SENDING)
        won = session.execute(
            update(Campaign).where(Campaign.id == campaign.id, Campaign.status.in_(from_statuses))
            .values(status=SENDING, started_at=now, updated_at=now, pause_reason="",
                    sent_by_id=actor.id if actor else campaign.sent_by_id)
            .execution_options(synchronize_session=False)
        ).rowcount
        if won != 1:
            raise SendingError("This campaign has already been started.")
        total = freeze_audience(session, campaign, now)
        if total == 0:
            raise SendingError("The audience has no one to send to: no subscribed WhatsApp number.")
        audit.record(session=session, actor=actor, action="campaign.send", target_type="campaign",
                     target_id=campaign.id, detail={"recipients": total, "scheduled": campaign.status == SCHEDULED})
        finish_if_done(session, campaign.id, now=now)  # counters; every row skipped -> Failed at once
        session.commit()
    except BaseException:
        session.rollback()
        raise
    session.refresh(campaign)
    if campaign.status == SENDING:
        _enqueue(campaign.id)
    return campaign


def _enqueue(campaign_id: int) -> None:
    config = sending_config()
    try:
        from app.redis_conn import get_redis
        get_redis().delete(error_stats_key(campaign_id))
        enqueue_lanes(campaign_id, config.lanes, config=config)
    except Exception:  # Redis down: the sweeper re-enqueues Sending campaigns that have no live job
        log.exception("could not enqueue campaign %s; the sweeper will retry", campaign_id)


# --- scheduling ------------------------------------------------------------------------------------

def to_utc(tz: str, local_dt: datetime | str) -> datetime:
    """A wall-clock time in a time zone -> the UTC instant. Refuses unknown zones and times that
    do not exist (the hour skipped when clocks go forward)."""
    try:
        zone = ZoneInfo(str(tz))
    except (ZoneInfoNotFoundError, ValueError):
        raise SendingError(f"Unknown time zone “{tz}”.") from None
    if isinstance(local_dt, str):
        try:
            local_dt = datetime.fromisoformat(local_dt.strip())
        except ValueError:
            raise SendingError("Enter the date and time as YYYY-MM-DD HH:MM.") from None
    if not isinstance(local_dt, datetime):
        raise SendingError("Enter the date and time as YYYY-MM-DD HH:MM.")
    if local_dt.tzinfo is not None:
        return local_dt.astimezone(UTC)
    aware = local_dt.replace(tzinfo=zone)
    if aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != local_dt:
        raise SendingError(f"{local_dt:%Y-%m-%d %H:%M} does not exist in {tz} (the clocks skip it).")
    return aware.astimezone(UTC)


def schedule_campaign(*, session: Session, actor: User | None, campaign_id: Any, tz: str,
                      local_dt: datetime | str, now: datetime | None = None) -> Campaign:
    """Draft -> Scheduled at the UTC instant of `local_dt` in `tz`. Commits."""
    user = _sender(session, actor)
    now = now or utcnow()
    campaign = _campaign(session, campaign_id)
    when = to_utc(tz, local_dt)
    if when <= now:
        raise SendingError("Pick a time in the future.")
    if campaign.status not in (DRAFT, SCHEDULED):
        raise SendingError(f"A {_label(campaign.status)} campaign cannot be scheduled.")
    problems = readiness_problems(session, campaign)
    if problems:
        raise SendingError(" ".join(problems))
    action = "campaign.reschedule" if campaign.status == SCHEDULED else "campaign.schedule"
    won = session.execute(
        update(Campaign).where(Campaign.id == campaign.id, Campaign.status.in_((DRAFT, SCHEDULED)))
        .values(status=SCHEDULED, scheduled_at=when, timezone=str(tz), updated_at=now, pause_reason="",
                sent_by_id=user.id)
        .execution_options(synchronize_session=False)
    ).rowcount
    if won != 1:
        session.rollback()
        raise SendingError("This campaign has just been started or changed; reload it.")
    audit.record(session=session, actor=user, action=action, target_type="campaign", target_id=campaign.id,
                 detail={"scheduled_at": when.isoformat(), "timezone": str(tz)})
    session.commit()
    session.refresh(campaign)
    return campaign


def reschedule_campaign(*, session: Session, actor: User | None, campaign_id: Any, tz: str,
                        local_dt: datetime | str, now: datetime | None = None) -> Campaign:
    campaign = _campaign(session, campaign_id)
    if campaign.status != SCHEDULED:
        raise SendingError(f"A {_label(campaign.status)} campaign cannot be rescheduled.")
    return schedule_campaign(session=session, actor=actor, campaign_id=campaign_id, tz=tz, local_dt=local_dt, now=now)


# --- pause, resume, cancel ----------------------------------------------------------------------

def _move(session: Session, campaign: Campaign, user: User, target: str, allowed: tuple[str, ...],
          action: str, now: datetime, detail: dict | None = None, **values: Any) -> Campaign:
    if campaign.status not in allowed:
        verb = {"campaign.pause": "paused", "campaign.resume": "resumed", "campaign.cancel": "cancelled"}[action]
        raise SendingError(f"A {_label(campaign.status)} campaign cannot be {verb}.")
    check_transition(campaign.status, target)
    won = session.execute(
        update(Campaign).where(Campaign.id == campaign.id, Campaign.status == campaign.status)
        .values(status=target, updated_at=now, **values).execution_options(synchronize_session=False)
    ).rowcount
    if won != 1:
        session.rollback()
        raise SendingError("This campaign has just changed; reload it.")
    audit.record(session=session, actor=user, action=action, target_type="campaign", target_id=campaign.id,
                 detail=detail or {})
    session.commit()
    session.refresh(campaign)
    return campaign


def pause_campaign(*, session: Session, actor: User | None, campaign_id: Any, reason: str = "",
                   now: datetime | None = None) -> Campaign:
    """Sending -> Paused. Messages already handed to WhatsApp stay sent; nothing is resent on resume."""
    user = _sender(session, actor)
    campaign = _campaign(session, campaign_id)
    text = (str(reason or "").strip() or f"Paused by {user.email}")[:500]
    return _move(session, campaign, user, PAUSED, (SENDING,), "campaign.pause", now or utcnow(),
                 {"reason": text}, pause_reason=text)


def resume_campaign(*, session: Session, actor: User | None, campaign_id: Any,
                    now: datetime | None = None) -> Campaign:
    """Paused -> Sending; only rows still queued are sent."""
    user = _sender(session, actor)
    campaign = _campaign(session, campaign_id)
    if campaign.status == PAUSED:
        problems = [p for p in readiness_problems(session, campaign) if "audience" not in p]
        if problems:
            raise SendingError(" ".join(problems))
    campaign = _move(session, campaign, user, SENDING, (PAUSED,), "campaign.resume", now or utcnow(),
                     pause_reason="")
    if finish_if_done(session, campaign.id):  # nothing was left to send
        session.commit()
        session.refresh(campaign)
        return campaign
    session.commit()
    _enqueue(campaign.id)
    return campaign


def cancel_campaign(*, session: Session, actor: User | None, campaign_id: Any,
                    now: datetime | None = None) -> Campaign:
    """Scheduled/Sending/Paused -> Cancelled. Rows not yet sent stay queued and are never sent."""
    user = _sender(session, actor)
    campaign = _campaign(session, campaign_id)
    now = now or utcnow()
    campaign = _move(session, campaign, user, CANCELLED, (SCHEDULED, SENDING, PAUSED), "campaign.cancel", now,
                     finished_at=now)
    refresh_counters(session, campaign.id)
    session.commit()
    return campaign
