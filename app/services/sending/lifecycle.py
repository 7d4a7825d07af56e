"""Starting, scheduling, pausing, resuming and cancelling a campaign.

Starting **freezes the audience** (`freeze`): the recipients, each with their template values resolved,
become recipient rows. The first chunk (`SendingConfig.freeze_first_chunk` rows: a small audience whole)
is written in the same transaction that moves the campaign to Sending; a larger audience is left
`freezing` and the send jobs freeze the rest chunk by chunk while the first rows are already being sent
(issue 16: the first message within a second of "Send", whatever the audience size). The status change
is a conditional UPDATE (`WHERE status IN (draft, scheduled)`), so two schedulers or two clicks can never
both start it: the loser sees rowcount 0 and changes nothing.
Start, schedule and resume first ask `readiness.campaign_problems(..., SEND)` (the wizard's own check).

These functions COMMIT (unlike most services): each hands work to other processes (RQ jobs, the
scheduler tick), which must see the change. Jobs are enqueued after the commit; if Redis is down at
that moment the sweeper re-enqueues the campaign later (the database says it is Sending).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import update
from sqlalchemy.orm import object_session
from sqlmodel import Session

from app.domain import permissions as perm
from app.domain.campaign_status import (
    CANCELLED,
    DRAFT,
    PAUSED,
    SCHEDULED,
    SENDING,
    STATUS_LABELS,
    check_transition,
)
from app.domain.readiness import for_resume, refusal
from app.models import AudienceUpload, Campaign, User
from app.redis_conn import get_redis
from app.services.access import get_or_raise, require
from app.services.accounts import audit
from app.services.audiences.summary import AudienceError
from app.services.sending.claims import is_sqlite
from app.services.sending.config import sending_config
from app.services.sending.freeze import freeze_audience, freeze_first_chunk
from app.services.sending.job import enqueue_lanes
from app.services.sending.keys import error_stats_key, outage_key
from app.services.sending.progress import finish_if_done, refresh_counters
from app.services.sending.readiness import SEND, campaign_problems
from app.timeutil import utcnow

log = logging.getLogger(__name__)


class SendingError(ValueError):
    """The campaign cannot do that now; the message is safe to show to the user."""


# --- helpers ------------------------------------------------------------------------------------


def _campaign(session: Session, campaign_id: Any) -> Campaign:
    campaign = get_or_raise(session, Campaign, campaign_id, SendingError, "That campaign does not exist.")
    session.refresh(campaign)  # its status as stored now: another process may have moved it
    return campaign


def _label(status: str) -> str:
    return STATUS_LABELS.get(status, status)


def require_audience_rights(user: User | None, campaign: Campaign) -> None:
    """A file audience is data the sender brings in: sending (or scheduling) a campaign with one needs
    `audiences:manage`, as choosing the file does (issue 13 item 9: otherwise a basic user duplicates a
    CSV campaign and sends it). PermissionDenied otherwise. Except a "send again to…" file: Hubcast wrote
    it from an existing campaign's recipients (`derived_from_campaign_id`), so sending it is sending to an
    existing audience (SPEC S1)."""
    if campaign.audience_kind == "csv":
        session = object_session(campaign)
        upload = (
            session.get(AudienceUpload, campaign.audience_upload_id)
            if session is not None and campaign.audience_upload_id
            else None
        )
        if upload is not None and upload.derived_from_campaign_id is not None:
            return
        perm.require(user.role if user is not None else "", perm.AUDIENCES_MANAGE)


def _refuse_unless_ready(session: Session, campaign: Campaign, *, resuming: bool = False) -> None:
    problems = campaign_problems(session, campaign, SEND)
    if resuming:
        problems = for_resume(problems)
    if problems:
        raise SendingError(refusal(problems))


# --- start ---------------------------------------------------------------------------------------


def start_campaign(
    *, session: Session, actor: User | None, campaign_id: Any, now: datetime | None = None, stream_freeze: bool = True
) -> Campaign:
    """Send now: Draft/Scheduled -> Sending, audience frozen (its first chunk; the rest streams), send jobs
    enqueued. Commits."""
    user = require(session, actor, perm.CAMPAIGNS_SEND)
    require_audience_rights(user, _campaign(session, campaign_id))
    return start_now(session=session, campaign_id=campaign_id, actor=user, now=now, stream_freeze=stream_freeze)


def start_now(
    *,
    session: Session,
    campaign_id: Any,
    actor: User | None,
    now: datetime | None = None,
    from_statuses: tuple[str, ...] = (DRAFT, SCHEDULED),
    stream_freeze: bool = True,
) -> Campaign:
    """The start itself (also used by the scheduler tick, with the user who scheduled it).
    `stream_freeze=False` freezes the whole audience before returning, as before issue 16 (the baseline
    bench/freeze.py measures the streaming freeze against)."""
    now = now or utcnow()
    campaign = _campaign(session, campaign_id)
    if campaign.status not in from_statuses:
        raise SendingError(f"A {_label(campaign.status)} campaign cannot be started.")
    _refuse_unless_ready(session, campaign)
    session.commit()  # end the read transaction: the write below must take the lock first (SQLite)
    try:
        if is_sqlite(session.get_bind()):
            session.connection().exec_driver_sql("BEGIN IMMEDIATE")
        for status in from_statuses:
            check_transition(status, SENDING)
        won = session.execute(
            update(Campaign)
            .where(Campaign.id == campaign.id, Campaign.status.in_(from_statuses))
            .values(
                status=SENDING,
                started_at=now,
                updated_at=now,
                pause_reason="",
                sent_by_id=actor.id if actor else campaign.sent_by_id,
            )
            .execution_options(synchronize_session=False)
        ).rowcount
        if won != 1:
            raise SendingError("This campaign has already been started.")
        try:
            if stream_freeze:
                total, complete = freeze_first_chunk(session, campaign, now, sending_config().freeze_first_chunk)
            else:
                total, complete = freeze_audience(session, campaign, now), True
        except AudienceError as exc:  # the file or segment went away since the check above
            raise SendingError(str(exc)) from None
        if total == 0:
            raise SendingError("The audience has no one to send to: no subscribed WhatsApp number.")
        # A streamed freeze's total is known when it ends (Campaign.total_recipients, kept by the counters).
        detail = (
            {"recipients": total, "scheduled": campaign.status == SCHEDULED}
            if complete
            else {"recipients_first_chunk": total, "streaming": True, "scheduled": campaign.status == SCHEDULED}
        )
        audit.record(
            session=session,
            actor=actor,
            action="campaign.send",
            target_type="campaign",
            target_id=campaign.id,
            detail=detail,
        )
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
        get_redis().delete(error_stats_key(campaign_id), outage_key(campaign_id))  # a fresh start for both rules
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


def schedule_campaign(
    *,
    session: Session,
    actor: User | None,
    campaign_id: Any,
    tz: str,
    local_dt: datetime | str,
    now: datetime | None = None,
) -> Campaign:
    """Draft -> Scheduled at the UTC instant of `local_dt` in `tz`. Commits."""
    user = require(session, actor, perm.CAMPAIGNS_SEND)
    now = now or utcnow()
    campaign = _campaign(session, campaign_id)
    when = to_utc(tz, local_dt)
    if when <= now:
        raise SendingError("Pick a time in the future.")
    if campaign.status not in (DRAFT, SCHEDULED):
        raise SendingError(f"A {_label(campaign.status)} campaign cannot be scheduled.")
    require_audience_rights(user, campaign)
    _refuse_unless_ready(session, campaign)
    action = "campaign.reschedule" if campaign.status == SCHEDULED else "campaign.schedule"
    won = session.execute(
        update(Campaign)
        .where(Campaign.id == campaign.id, Campaign.status.in_((DRAFT, SCHEDULED)))
        .values(
            status=SCHEDULED, scheduled_at=when, timezone=str(tz), updated_at=now, pause_reason="", sent_by_id=user.id
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if won != 1:
        session.rollback()
        raise SendingError("This campaign has just been started or changed; reload it.")
    audit.record(
        session=session,
        actor=user,
        action=action,
        target_type="campaign",
        target_id=campaign.id,
        detail={"scheduled_at": when.isoformat(), "timezone": str(tz)},
    )
    session.commit()
    session.refresh(campaign)
    return campaign


def reschedule_campaign(
    *,
    session: Session,
    actor: User | None,
    campaign_id: Any,
    tz: str,
    local_dt: datetime | str,
    now: datetime | None = None,
) -> Campaign:
    campaign = _campaign(session, campaign_id)
    if campaign.status != SCHEDULED:
        raise SendingError(f"A {_label(campaign.status)} campaign cannot be rescheduled.")
    return schedule_campaign(session=session, actor=actor, campaign_id=campaign_id, tz=tz, local_dt=local_dt, now=now)


# --- pause, resume, cancel ----------------------------------------------------------------------


def _move(
    session: Session,
    campaign: Campaign,
    user: User,
    target: str,
    allowed: tuple[str, ...],
    action: str,
    now: datetime,
    detail: dict | None = None,
    **values: Any,
) -> Campaign:
    if campaign.status not in allowed:
        verb = {"campaign.pause": "paused", "campaign.resume": "resumed", "campaign.cancel": "cancelled"}[action]
        raise SendingError(f"A {_label(campaign.status)} campaign cannot be {verb}.")
    check_transition(campaign.status, target)
    won = session.execute(
        update(Campaign)
        .where(Campaign.id == campaign.id, Campaign.status == campaign.status)
        .values(status=target, updated_at=now, **values)
        .execution_options(synchronize_session=False)
    ).rowcount
    if won != 1:
        session.rollback()
        raise SendingError("This campaign has just changed; reload it.")
    audit.record(
        session=session, actor=user, action=action, target_type="campaign", target_id=campaign.id, detail=detail or {}
    )
    session.commit()
    session.refresh(campaign)
    return campaign


def pause_campaign(
    *, session: Session, actor: User | None, campaign_id: Any, reason: str = "", now: datetime | None = None
) -> Campaign:
    """Sending -> Paused. Messages already handed to WhatsApp stay sent; nothing is resent on resume."""
    user = require(session, actor, perm.CAMPAIGNS_SEND)
    campaign = _campaign(session, campaign_id)
    text = (str(reason or "").strip() or f"Paused by {user.email}")[:500]
    return _move(
        session,
        campaign,
        user,
        PAUSED,
        (SENDING,),
        "campaign.pause",
        now or utcnow(),
        {"reason": text},
        pause_reason=text,
    )


def resume_campaign(*, session: Session, actor: User | None, campaign_id: Any, now: datetime | None = None) -> Campaign:
    """Paused -> Sending; only rows still queued are sent."""
    user = require(session, actor, perm.CAMPAIGNS_SEND)
    campaign = _campaign(session, campaign_id)
    if campaign.status == PAUSED and campaign.started_at is None:
        # Held at its scheduled time before it ever started (scheduler.py): resuming is starting it now.
        require_audience_rights(user, campaign)
        return start_now(session=session, campaign_id=campaign.id, actor=user, now=now, from_statuses=(PAUSED,))
    if campaign.status == PAUSED:
        _refuse_unless_ready(session, campaign, resuming=True)
    campaign = _move(session, campaign, user, SENDING, (PAUSED,), "campaign.resume", now or utcnow(), pause_reason="")
    if finish_if_done(session, campaign.id):  # nothing was left to send
        session.commit()
        session.refresh(campaign)
        return campaign
    session.commit()
    _enqueue(campaign.id)
    return campaign


def cancel_campaign(*, session: Session, actor: User | None, campaign_id: Any, now: datetime | None = None) -> Campaign:
    """Scheduled/Sending/Paused -> Cancelled. Rows not yet sent stay queued and are never sent."""
    user = require(session, actor, perm.CAMPAIGNS_SEND)
    campaign = _campaign(session, campaign_id)
    now = now or utcnow()
    # A freeze still streaming stops too (its next chunk's conditional update fails): the rows frozen so far
    # are the cancelled campaign's recipients.
    campaign = _move(
        session,
        campaign,
        user,
        CANCELLED,
        (SCHEDULED, SENDING, PAUSED),
        "campaign.cancel",
        now,
        finished_at=now,
        freezing=False,
        freeze_heartbeat_at=None,
    )
    refresh_counters(session, campaign.id)
    session.commit()
    return campaign
