"""Starting Scheduled campaigns when their UTC instant comes.

Every worker runs `start_due_campaigns` every few seconds (see workers/worker.py); several may run it
at the same moment, and the same campaign may be seen due by all of them. Exactly one wins, because
`start_now` moves Scheduled -> Sending with a conditional UPDATE in the transaction that freezes the
audience; the others get "already started" and do nothing. Across restarts nothing is lost: the
schedule lives in the database, not in Redis.

A campaign goes out with the authority of the people behind it: when the user who created or scheduled
it has been deactivated since (or may no longer send it), it is not started but Paused with that reason
(issue 13 item 16), so someone who may send it decides: Resume starts it then, Cancel drops it.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select, update
from sqlmodel import Session

from app.db import get_engine
from app.domain import permissions as perm
from app.domain.campaign_status import DRAFT, PAUSED, SCHEDULED, check_transition
from app.models import Campaign, User
from app.services.accounts import audit
from app.services.sending.lifecycle import SendingError, require_audience_rights, start_now
from app.timeutil import utcnow

log = logging.getLogger(__name__)


def due_campaign_ids(session: Session, now: datetime) -> list[int]:
    return list(
        session.execute(
            select(Campaign.id)
            .where(Campaign.status == SCHEDULED, Campaign.scheduled_at.is_not(None), Campaign.scheduled_at <= now)
            .order_by(Campaign.scheduled_at)
        ).scalars()
    )


def start_due_campaigns(now: datetime | None = None) -> list[int]:
    """Start every due Scheduled campaign this call wins; returns their ids."""
    now = now or utcnow()
    engine = get_engine()
    with Session(engine) as session:
        due = due_campaign_ids(session, now)
    started: list[int] = []
    for campaign_id in due:
        with Session(engine, expire_on_commit=False) as session:
            campaign = session.get(Campaign, campaign_id)
            actor = session.get(User, campaign.sent_by_id) if campaign and campaign.sent_by_id else None
            held = _authority_problem(session, campaign, actor) if campaign else None
            if held:
                _hold(session, campaign_id, actor, held, now)
                continue
            try:
                start_now(session=session, campaign_id=campaign_id, actor=actor, now=now, from_statuses=(SCHEDULED,))
                started.append(campaign_id)
            except SendingError as exc:
                session.rollback()
                if "already been started" in str(exc) or "cannot be started" in str(exc):
                    continue  # another scheduler won, or it was cancelled/edited meanwhile
                _back_to_draft(session, campaign_id, actor, str(exc), now)
            except Exception:
                session.rollback()
                log.exception("scheduled campaign %s could not start", campaign_id)
    return started


def _authority_problem(session: Session, campaign: Campaign, scheduler: User | None) -> str | None:
    """Why the people behind this campaign can no longer send it, or None."""
    creator = session.get(User, campaign.created_by_id) if campaign.created_by_id else None
    for user, who in ((scheduler, "who scheduled it"), (creator, "who created it")):
        if user is not None and not user.is_active:
            return f"{user.email}, {who}, was deactivated"
    if scheduler is not None:
        try:
            perm.require(scheduler.role, perm.CAMPAIGNS_SEND)
            require_audience_rights(scheduler, campaign)
        except perm.PermissionDenied:
            return f"{scheduler.email}, who scheduled it, may no longer send it"
    return None


def _leave_scheduled(session: Session, campaign_id: int, target: str, reason: str, now: datetime, **audit_args) -> None:
    """Scheduled -> `target` with the reason shown on the campaign, audited once, only if still Scheduled (another
    scheduler process may have moved it first)."""
    check_transition(SCHEDULED, target)
    won = session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.status == SCHEDULED)
        .values(status=target, pause_reason=reason[:500], updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if won:
        audit.record(session=session, target_type="campaign", target_id=campaign_id, **audit_args)
    session.commit()


def _hold(session: Session, campaign_id: int, actor: User | None, problem: str, now: datetime) -> None:
    """Scheduled -> Paused, nothing frozen or sent: a person who may send it resumes or cancels it."""
    reason = f"Not sent at the scheduled time: {problem}. Resume it to send it now, or cancel it."[:500]
    _leave_scheduled(
        session,
        campaign_id,
        PAUSED,
        reason,
        now,
        actor=None,
        actor_email="scheduler",
        action="campaign.schedule_held",
        outcome="refused",
        detail={"reason": reason, "scheduled_by": actor.id if actor else None},
    )


def _back_to_draft(session: Session, campaign_id: int, actor: User | None, problem: str, now: datetime) -> None:
    """It cannot go out (template no longer approved, channel disconnected, audience empty): say why
    and let a person fix and reschedule it, rather than retry every few seconds."""
    reason = f"Not sent at the scheduled time: {problem}"[:500]
    _leave_scheduled(
        session,
        campaign_id,
        DRAFT,
        reason,
        now,
        actor=actor,
        action="campaign.schedule_failed",
        outcome="error",
        detail={"reason": reason},
    )
