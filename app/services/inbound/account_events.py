"""Meta's webhook fields other than `messages`, applied (issue 12 point 3) instead of dropped.

Called inside the webhook request's transaction (`http_api._store`), after the statuses are stored, so
the change commits with them and the request answers 200 only once it is kept. These events are rare
(a few a day), so they are applied at once rather than queued.

- message_template_status_update: the template takes its new status and the reason; every Sending or
  Scheduled campaign using a template that is no longer sendable (PAUSED, DISABLED, REJECTED, ...) is
  paused with that reason on its page (Sending: `outcomes.pause_campaign_conn`, the engine's own
  auto-pause; Scheduled: held, as the scheduler holds one). APPROVED again (or REINSTATED) makes the
  template sendable; paused campaigns stay paused until a person resumes them.
- message_template_quality_update / template_category_update: the template's quality score / category.
- phone_number_quality_update: the channel's quality rating, its messaging limit tier (`current_limit`),
  and a sentence on the Channels page; account_update (restrictions, violations, bans): that sentence.
- user_preferences: "stop" unsubscribes the person from WhatsApp (as the STOP keyword does, audited);
  "resume" re-subscribes them only when that stop is what unsubscribed them (someone who wrote STOP or
  was unsubscribed by a person stays unsubscribed: a resume of Meta's marketing setting is not consent
  to what they refused here).

Which channel may say what (as for statuses, issue 13): an account change applies only to channels
whose app secret signed the body and whose WhatsApp Business Account id is the entry's id; a
user_preferences change only through a number such a channel owns. Others are refused and counted.
Meta redelivers webhooks: applying one twice changes nothing more (statuses are set, not toggled).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import insert, or_, select, update
from sqlmodel import Session

from app.domain.campaign_status import PAUSED, SCHEDULED, SENDING
from app.domain.messaging_limits import TierError
from app.domain.template_rules import SENDABLE_STATUSES
from app.models import AuditLog, Campaign, Channel, ContactIdentity, Template
from app.services.accounts import audit
from app.services.channels.messaging_limit import record_tier
from app.services.inbound import opt_out
from app.services.sending.outcomes import pause_campaign_conn
from app.timeutil import utcnow
from app.whatsapp import account_webhooks as aw

log = logging.getLogger(__name__)

# The status a template has after each message_template_status_update event (FLAGGED changes none).
STATUS_AFTER = {
    "APPROVED": "APPROVED",
    "REINSTATED": "APPROVED",
    "PAUSED": "PAUSED",
    "DISABLED": "DISABLED",
    "REJECTED": "REJECTED",
    "PENDING_DELETION": "PENDING_DELETION",
    "PENDING": "PENDING",
    "IN_APPEAL": "IN_APPEAL",
    "ARCHIVED": "ARCHIVED",
    "LIMIT_EXCEEDED": "LIMIT_EXCEEDED",
    "DELETED": "DELETED",
}
_VERB = {"PAUSED": "paused", "DISABLED": "disabled", "REJECTED": "rejected", "PENDING_DELETION": "is deleting"}
MARKETING_STOP = "WhatsApp: stop marketing messages"  # the audit keeps 40 characters of a keyword
PHONE_QUALITY_RATING = {"FLAGGED": "FLAGGED", "UNFLAGGED": "GREEN"}


@dataclass
class AccountResult:
    applied: int = 0
    refused: int = 0
    paused: list[int] = field(default_factory=list)  # campaigns paused (or held) because of a template
    unsubscribed: list[str] = field(default_factory=list)
    resubscribed: list[str] = field(default_factory=list)


def _record(session: Session, action: str, target_type: str, target_id: object, detail: dict, outcome: str = "ok"):
    audit.record(
        session=session,
        actor=None,
        actor_email="whatsapp",
        action=action,
        outcome=outcome,
        target_type=target_type,
        target_id=target_id,
        detail=detail,
    )


def _templates(session: Session, channel_ids: list[int], ref: aw.TemplateRef) -> list[Template]:
    by_id = Template.external_id == ref.external_id if ref.external_id else None
    by_name = (Template.name == ref.name) & (Template.language == ref.language) if ref.name else None
    match = or_(*[c for c in (by_id, by_name) if c is not None])
    return list(session.execute(select(Template).where(Template.channel_id.in_(channel_ids), match)).scalars().all())


def status_reason(event: str, reason: str) -> str:
    """The sentence kept on the template: what WhatsApp did and why."""
    what = {
        "APPROVED": "Approved by WhatsApp",
        "REINSTATED": "Approved again by WhatsApp (reinstated)",
        "FLAGGED": "Flagged by WhatsApp for low quality: it will be paused if its quality does not improve",
    }.get(event, f"{event.replace('_', ' ').capitalize()} by WhatsApp")
    return (f"{what} ({reason})" if reason else what)[:500]


def _pause_reason(template: Template, status: str, reason: str) -> str:
    verb = _VERB.get(status, f"set to {status}")
    why = f" ({reason})" if reason else ""
    return (
        f"WhatsApp {verb} the template “{template.name}” ({template.language}){why}, so sending stopped. "
        "Messages already sent stay sent. Resume once the template is approved again, or duplicate the "
        "campaign and choose another template."
    )[:500]


def _pause_campaigns(session: Session, template: Template, reason: str, result: AccountResult) -> None:
    now = utcnow()
    rows = session.execute(
        select(Campaign.id, Campaign.status).where(
            Campaign.template_id == template.id, Campaign.status.in_((SENDING, SCHEDULED))
        )
    ).all()
    conn = session.connection()
    for campaign_id, status in rows:
        if status == SENDING:
            paused = pause_campaign_conn(conn, campaign_id, reason, now)
        else:  # held, as the scheduler holds one: nothing frozen or sent; resuming later starts it
            paused = bool(
                conn.execute(
                    update(Campaign.__table__)
                    .where(Campaign.__table__.c.id == campaign_id, Campaign.__table__.c.status == SCHEDULED)
                    .values(status=PAUSED, pause_reason=reason, updated_at=now)
                ).rowcount
            )
            if paused:
                conn.execute(
                    insert(AuditLog.__table__).values(
                        at=now,
                        actor_id=None,
                        actor_email="whatsapp",
                        action="campaign.auto_pause",
                        outcome="ok",
                        target_type="campaign",
                        target_id=str(campaign_id),
                        detail={"reason": reason, "was": SCHEDULED},
                        ip="",
                    )
                )
        if paused:
            result.paused.append(campaign_id)


def _template_change(session: Session, change: aw.AccountChange, channel_ids: list[int], result: AccountResult) -> None:
    assert change.template is not None
    templates = _templates(session, channel_ids, change.template)
    if not templates:
        log.info("webhook %s: no stored template %s", change.field, change.template)
        return
    now = utcnow()
    for template in templates:
        before = {"status": template.status, "quality": template.quality_score, "category": template.category}
        if change.field == aw.TEMPLATE_STATUS:
            template.status = STATUS_AFTER.get(change.event, template.status)
            template.status_reason = status_reason(change.event, change.reason)
        elif change.field == aw.TEMPLATE_QUALITY:
            template.quality_score = change.new_value[:16]
        else:
            template.category = change.new_value[:16]
        template.updated_at = now
        session.add(template)
        session.flush()
        _record(
            session,
            f"template.{change.field}",
            "template",
            template.id,
            {
                "name": template.name,
                "language": template.language,
                "event": change.event,
                "reason": change.reason,
                "new": change.new_value,
                "before": before,
            },
        )
        if change.field == aw.TEMPLATE_STATUS and template.status not in SENDABLE_STATUSES:
            _pause_campaigns(session, template, _pause_reason(template, template.status, change.reason), result)
    result.applied += 1


def _phone_notice(change: aw.AccountChange) -> str:
    when = utcnow().strftime("%d %b %Y %H:%M UTC")
    limit = change.new_value
    old = str(change.raw.get("old_limit") or "")
    text = {
        "FLAGGED": "WhatsApp flagged this number's quality as low: its messaging limit may be lowered.",
        "UNFLAGGED": "WhatsApp no longer flags this number's quality.",
        "UPGRADE": f"WhatsApp raised this number's messaging limit to {limit}" + (f" (was {old})." if old else "."),
        "DOWNGRADE": f"WhatsApp lowered this number's messaging limit to {limit}" + (f" (was {old})." if old else "."),
    }.get(change.event, f"WhatsApp phone number update: {change.event}" + (f", limit {limit}." if limit else "."))
    return f"{text} ({when})"[:500]


def _account_notice(change: aw.AccountChange) -> str:
    when = utcnow().strftime("%d %b %Y %H:%M UTC")
    detail = f": {change.reason}" if change.reason else ""
    text = {
        "ACCOUNT_RESTRICTION": f"WhatsApp restricted this account{detail}.",
        "ACCOUNT_VIOLATION": f"WhatsApp reports a policy violation{detail}.",
        "DISABLED_UPDATE": f"WhatsApp disabled this account{detail}.",
        "VERIFIED_ACCOUNT": "WhatsApp verified this account.",
    }.get(change.event, f"WhatsApp account update: {change.event}{detail}.")
    return f"{text} ({when})"[:500]


def _channel_change(session: Session, change: aw.AccountChange, channels: list[Channel], result: AccountResult) -> None:
    def digits(value: str) -> str:
        return "".join(ch for ch in value or "" if ch.isdigit())

    targets = [c for c in channels if not change.phone_number or digits(c.display_phone_number) == change.phone_number]
    if not targets and change.field == aw.ACCOUNT_UPDATE:
        targets = channels  # an account-wide event: every number of the account shows it
    elif not targets:
        # A number whose display number Hubcast has not read yet (the connection test reads it) may be this one.
        targets = [c for c in channels if not digits(c.display_phone_number)]
    now = utcnow()
    for channel in targets:
        before = {"quality": channel.quality_rating, "tier": channel.messaging_limit_tier}
        if change.field == aw.PHONE_QUALITY:
            channel.quality_rating = PHONE_QUALITY_RATING.get(change.event, channel.quality_rating)
            try:  # the daily messaging limit's tier: the sending engine counts by it (channels/messaging_limit.py)
                record_tier(session, channel, change.new_value)
            except TierError:
                pass
            channel.account_notice = _phone_notice(change)
        else:
            channel.account_notice = _account_notice(change)
        channel.updated_at = now
        session.add(channel)
        _record(
            session,
            f"channel.{change.field}",
            "channel",
            channel.id,
            {"event": change.event, "reason": change.reason, "new": change.new_value, "before": before},
        )
    if targets:
        result.applied += 1


def _was_stopped_by_marketing_setting(session: Session, identity: ContactIdentity) -> bool:
    latest = (
        session.execute(
            select(AuditLog)
            .where(
                AuditLog.target_type == "contact_identity",
                AuditLog.target_id == str(identity.id),
                AuditLog.action.in_(
                    ("contact.unsubscribed", "contact.unsubscribe", "contact.subscribe", "contact.resubscribed")
                ),
            )
            .order_by(AuditLog.id.desc())
            .limit(1)
        )
        .scalars()
        .first()
    )
    return bool(latest and latest.action == "contact.unsubscribed" and latest.detail.get("keyword") == MARKETING_STOP)


def _preferences(session: Session, change: aw.AccountChange, channel_id: int, result: AccountResult) -> None:
    for pref in change.preferences:
        address = opt_out.whatsapp_address(pref.wa_id)
        identity = (
            session.execute(
                select(ContactIdentity).where(
                    ContactIdentity.channel_type == opt_out.WHATSAPP, ContactIdentity.address == address
                )
            )
            .scalars()
            .first()
        )
        if pref.value == "stop":
            if identity is None or identity.subscribed:
                opt_out.unsubscribe(
                    session=session, address=address, keyword=MARKETING_STOP, message_id="", channel_id=channel_id
                )
                result.unsubscribed.append(address)
        elif identity is not None and not identity.subscribed:
            if _was_stopped_by_marketing_setting(session, identity):
                identity.subscribed, identity.subscription_changed_at = True, utcnow()
                session.add(identity)
                session.flush()
                _record(
                    session,
                    "contact.resubscribed",
                    "contact_identity",
                    identity.id,
                    {"address": address, "by": pref.detail},
                )
                result.resubscribed.append(address)
            else:
                _record(
                    session,
                    "contact.resume_ignored",
                    "contact_identity",
                    identity.id,
                    {"address": address, "why": "unsubscribed here (STOP or by a person), not by WhatsApp's setting"},
                    outcome="refused",
                )
    result.applied += 1


def apply_account_changes(session: Session, payload: object, owned: Mapping[str, int]) -> AccountResult:
    """Apply every non-`messages` change of a signed body (caller commits). `owned` maps the phone number ids
    of the channels whose app secret signed the body to their channel ids (`http_api._authenticate`)."""
    result = AccountResult()
    changes = aw.parse_account_changes(payload)
    if not changes:
        return result
    signed = list(session.execute(select(Channel).where(Channel.id.in_(set(owned.values())))).scalars().all())
    for change in changes:
        if change.field == aw.USER_PREFERENCES:
            channel_id = owned.get(change.phone_number_id)
            if channel_id is None:
                result.refused += 1
                continue
            _preferences(session, change, channel_id, result)
            continue
        channels = [c for c in signed if c.business_account_id and c.business_account_id == change.account_id]
        if not channels:
            result.refused += 1
            continue
        if change.template is not None:
            _template_change(session, change, [c.id for c in channels], result)
        else:
            _channel_change(session, change, channels, result)
    if result.refused:
        log.warning(
            "webhook: refused %d account change(s) for an account no signing channel belongs to", result.refused
        )
    return result
