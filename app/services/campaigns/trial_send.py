""" "Send a test message to one number" from the wizard's Design step (SPEC S10, issue 5): the trial send.

(Named "trial" in the code so that neither pytest nor a reader takes it for a test; the UI still says
"Send a test message", and the table keeps its name `test_sends`.)

The trial goes through the real sending path, so what works here works in the campaign:
- the same checks a start makes (`sending.readiness.campaign_problems(..., SEND)`: channel connected,
  template APPROVED and of that channel, every variable mapped);
- the parameters rendered by the campaign's own mapping (`variables.resolve`) with the values of the
  audience's recipient that has this number, else of the FIRST recipient (the one the preview shows),
  both read by `audiences.recipients`, the reader the freeze uses;
- the same payload builder (`build_send_components`), the same `CloudApiClient` and the channel's
  shared rate limiter (`rate_limit.channel_limiter`), so a trial never pushes a busy channel past its cap.
It is recorded as a `TrialSend`, never as a CampaignRecipient: campaign counts never include it. Its
`biz_opaque_callback_data` ("hubcast-test-<id>") can never be read as a recipient id by the webhook
matcher, and `apply_trial_statuses` moves the row to delivered/read from status webhooks.

Refusals (`TrialSendError`) happen before anything is stored or sent. A user may send at most
MAX_PER_WINDOW trials per WINDOW_S (a sliding window in Redis): a trial reaches a real phone and costs a
conversation, and a button is easy to click repeatedly.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import select, update
from sqlmodel import Session

from app.domain import permissions as perm
from app.domain.campaign_status import R_FAILED, recipient_moves_forward
from app.domain.phone import normalise_phone
from app.domain.readiness import refusal
from app.domain.variables import placeholder_label, resolve
from app.models import Campaign, Channel, Template, TrialSend, User, WebhookStatusEvent
from app.redis_conn import get_redis, redis_url
from app.services.access import get_or_raise, parse_id, require
from app.services.accounts import audit
from app.services.audiences.csv_reader import CsvRefused
from app.services.audiences.recipients import Recipient, iter_recipients, unsubscribed_numbers
from app.services.audiences.summary import AudienceError
from app.services.channels.channels import run_async
from app.services.sending.config import SendingConfig, sending_config
from app.services.sending.rate_limit import channel_limiter
from app.services.sending.readiness import SEND, campaign_problems, template_keys
from app.timeutil import utcnow
from app.whatsapp.client import CloudApiClient, SendResult
from app.whatsapp.components import MissingVariableError, build_send_components
from app.whatsapp.errors import WhatsAppApiError

MAX_PER_WINDOW = 5
WINDOW_S = 60
CALLBACK_PREFIX = "hubcast-test-"  # not "<letters>:<digits>": the webhook matcher must not take it for a row id
EXAMPLE_NUMBER = "+33 6 12 34 56 78"

# Sliding window: drop entries older than the window, refuse at the limit (answering the seconds until the
# oldest entry leaves it), else add this one. One script, so two clicks cannot both take the last slot.
_THROTTLE = """
local key, limit, window_us, member = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window_us)
if redis.call('ZCARD', key) >= limit then
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return math.ceil((tonumber(oldest[2]) + window_us - now) / 1000000)
end
redis.call('ZADD', key, now, member .. ':' .. now)
redis.call('PEXPIRE', key, math.ceil(window_us / 1000) + 1000)
return 0
"""


class TrialSendError(ValueError):
    """The trial cannot be sent; the message is shown as is and nothing was stored or sent."""


@dataclass(frozen=True)
class TrialSendResult:
    ok: bool
    to: str  # E.164
    message: str  # what the user reads
    status: str  # sent | failed | unknown
    trial_send_id: int
    message_id: str = ""


# --- checks ---------------------------------------------------------------------------------------


def normalise_trial_number(raw: Any) -> str:
    """E.164 for the typed number, or a TrialSendError saying what is wrong with it."""
    if not isinstance(raw, str) or not raw.strip():
        raise TrialSendError(
            f"Enter the phone number to send the test to, with its country code (e.g. {EXAMPLE_NUMBER})."
        )
    if len(raw) > 40:
        raise TrialSendError("That is not a phone number: at most 15 digits after the + and the country code.")
    e164, reason = normalise_phone(raw)
    if e164 is None:
        raise TrialSendError(
            f"“{raw.strip()}” cannot receive a test: {reason[0].lower() + reason[1:]} (e.g. {EXAMPLE_NUMBER})."
        )
    return e164


def _campaign(session: Session, campaign_id: Any) -> Campaign:
    if parse_id(campaign_id) is None:  # the wizard has no draft until it has a name
        raise TrialSendError("Save the campaign first: give it a name.")
    return get_or_raise(session, Campaign, campaign_id, TrialSendError, "That campaign does not exist.")


def _ready(session: Session, campaign: Campaign) -> tuple[Channel, Template]:
    problems = campaign_problems(session, campaign, SEND)  # the very checks a start makes
    if problems:
        raise TrialSendError("The test cannot be sent yet: " + refusal(problems))
    return session.get(Channel, campaign.channel_id), session.get(Template, campaign.template_id)


# --- whose values ---------------------------------------------------------------------------------


def _recipient(session: Session, campaign: Campaign, to: str) -> Recipient | None:
    """The audience's recipient with this number, else its first recipient (None: nobody)."""
    try:
        return next(iter_recipients(session, campaign, address=to, limit=1), None) or next(
            iter_recipients(session, campaign, limit=1), None
        )
    except (AudienceError, CsvRefused) as exc:  # the audience vanished, or the file changed on disk
        raise TrialSendError(str(exc)) from None


def values_for_trial(session: Session, campaign: Campaign, template: Template, to: str) -> tuple[dict[str, str], str]:
    """(values by variable key, whose values they are) for a trial send to `to`."""
    found = _recipient(session, campaign, to)
    whose = (
        ""
        if found is None
        else (
            "this number's values from the audience"
            if found.address == to
            else f"the values of the first recipient ({found.address})"
        )
    )
    resolution = resolve(
        template_keys(template),
        campaign.variable_mapping or {},
        contact=found.contact if found else None,
        row=found.row if found else None,
    )
    if not resolution.ok:
        labels = ", ".join(placeholder_label(k) for k in resolution.missing)
        who = (
            "The audience has no recipient to take values from"
            if found is None
            else f"The {'recipient with this number' if found.address == to else 'first recipient'} "
            f"({found.address}) has no value for {labels}"
        )
        raise TrialSendError(
            f"{who}, and {labels} has no fallback: add a fallback text, or the campaign "
            f"will skip recipients like this one."
        )
    return resolution.values, whose


# --- throttle -------------------------------------------------------------------------------------


def _throttle_key(user_id: int) -> str:
    return f"hubcast:test-send:{user_id}"


def take_throttle_slot(redis_client, user_id: int) -> None:
    try:
        wait = int(redis_client.eval(_THROTTLE, 1, _throttle_key(user_id), MAX_PER_WINDOW, WINDOW_S * 1_000_000, "t"))
    except Exception as exc:  # Redis down: the rate limiter needs it too, so no test can be sent
        raise TrialSendError(
            "Test messages cannot be sent right now (the queue service is not reachable); try again in a minute."
        ) from exc
    if wait > 0:
        raise TrialSendError(
            f"You have sent {MAX_PER_WINDOW} test messages in the last minute; "
            f"wait {wait} second{'s' if wait != 1 else ''} before sending another."
        )


# --- the send -------------------------------------------------------------------------------------


async def post_trial(
    channel: Any, template: Any, to: str, components: list, callback: str, config: SendingConfig, url: str
) -> SendResult:
    """One POST on the real path: the channel's shared rate limiter, then the Cloud API client."""
    aredis = aioredis.Redis.from_url(url)
    client = CloudApiClient.from_channel(channel, timeout=config.request_timeout_s, max_connections=1)
    try:
        limiter = channel_limiter(aredis, channel, config)
        await limiter.wait(1, max_late=config.max_late_s)
        try:
            return await client.send_template(
                to, template.name, template.language, components, biz_opaque_callback_data=callback
            )
        except WhatsAppApiError as exc:
            if not exc.ambiguous and exc.classification.rate_limited:  # as a campaign job does: everyone waits
                await limiter.cool_down(exc.retry_after or config.rate_limit_cooldown_s)
            raise
    finally:
        await client.aclose()
        await aredis.aclose()


def plain_error(exc: WhatsAppApiError) -> str:
    """What WhatsApp's refusal means for the person who clicked "Send test", with Meta's code and words."""
    c, error = exc.classification, exc.error
    meta = str(error)[:300]  # "#131026 Message undeliverable: details"
    if exc.ambiguous:
        return (
            f"WhatsApp did not answer in time ({error.title}). The test may still arrive; check the phone "
            f"before sending another."
        )
    if error.code == 190 or error.http_status == 401:
        return f"WhatsApp refused the channel's access token; reconnect the channel in Channels. ({meta})"
    if c.stops_campaign and not c.template_paused:  # template-wide codes stop a campaign too (issue 12)
        return (
            f"WhatsApp refused to send from this channel; a campaign would be refused the same way. "
            f"Check the channel in WhatsApp Manager. ({meta})"
        )
    if c.rate_limited:
        return f"WhatsApp is limiting how fast this number sends right now; try again in a minute. ({meta})"
    if c.template_issue:
        return f"WhatsApp refused the template or its values; the campaign would fail the same way. ({meta})"
    if c.unsubscribe_contact:
        return f"This person has stopped marketing messages from you on WhatsApp. ({meta})"
    if c.retryable:
        return f"WhatsApp had a temporary problem; try again in a moment. ({meta})"
    if error.code in (131026, 133010):
        return f"WhatsApp cannot deliver to this number (is WhatsApp installed on it?). ({meta})"
    return f"WhatsApp refused the test message. ({meta})"


def send_trial_message(
    *,
    session: Session,
    actor: User | None,
    campaign_id: Any,
    to: Any,
    redis_client=None,
    config: SendingConfig | None = None,
) -> TrialSendResult:
    """Send the campaign's message to one number as a trial. Commits (the row exists before the POST
    leaves, so a crash mid-send still shows what may have been sent). Raises TrialSendError (nothing
    stored or sent) or PermissionDenied; WhatsApp's refusals come back as a failed result."""
    # Who may design a campaign may try it (campaigns:edit, what every Design-step handler needs): a trial
    # reaches only the number the user typed, never the audience, and changes no campaign.
    user = require(session, actor, perm.CAMPAIGNS_EDIT)
    number = normalise_trial_number(to)
    campaign = _campaign(session, campaign_id)
    channel, template = _ready(session, campaign)
    if unsubscribed_numbers(session, [number]):
        raise TrialSendError(f"{number} has unsubscribed from your WhatsApp messages; send the test to another number.")
    values, whose = values_for_trial(session, campaign, template, number)
    try:
        components = build_send_components(template.components or [], values, template.parameter_format)
    except MissingVariableError as exc:  # resolve() said every key has a value; kept for safety
        raise TrialSendError("Missing value for " + ", ".join(placeholder_label(k) for k in exc.keys)) from None
    config = config or sending_config()
    take_throttle_slot(redis_client if redis_client is not None else get_redis(), user.id)

    # Plain copies: nothing from the ORM is touched while the request is in flight.
    facts = SimpleNamespace(
        id=channel.id,
        messages_per_second=channel.messages_per_second,
        api_base_url=channel.api_base_url,
        api_version=channel.api_version,
        phone_number_id=channel.phone_number_id,
        business_account_id=channel.business_account_id,
        access_token=channel.access_token,
    )
    tmpl = SimpleNamespace(name=template.name, language=template.language)
    row = TrialSend(campaign_id=campaign.id, user_id=user.id, to=number, status="sending")
    session.add(row)
    session.flush()
    audit.record(
        session=session,
        actor=user,
        action="campaign.test_send",
        target_type="campaign",
        target_id=campaign.id,
        detail={"to": number, "test_send_id": row.id},
    )  # the audit log's key
    session.commit()
    trial_id = row.id

    try:
        result = run_async(
            lambda: post_trial(facts, tmpl, number, components, f"{CALLBACK_PREFIX}{trial_id}", config, redis_url())
        )
    except WhatsAppApiError as exc:
        status = "unknown" if exc.ambiguous else "failed"
        message = plain_error(exc)
        session.execute(
            update(TrialSend)
            .where(TrialSend.id == trial_id)
            .values(status=status, error_code=exc.code, error=message[:500], updated_at=utcnow())
        )
        session.commit()
        return TrialSendResult(False, number, message, status, trial_id)
    session.execute(
        update(TrialSend)
        .where(TrialSend.id == trial_id, TrialSend.status == "sending")
        .values(status="sent", message_id=result.message_id, updated_at=utcnow())
    )
    session.commit()
    message = (
        f"Test sent to {number} with {whose}; it is not counted in the campaign."
        if whose
        else f"Test sent to {number}; it is not counted in the campaign."
    )
    return TrialSendResult(True, number, message, "sent", trial_id, result.message_id)


def latest_status(session: Session, trial_send_id: Any) -> TrialSend | None:
    number = parse_id(trial_send_id)
    return session.get(TrialSend, number) if number is not None else None


# --- status webhooks --------------------------------------------------------------------------------


def apply_trial_statuses(session: Session, limit: int, *, up_to: int | None = None) -> int:
    """Apply stored status events whose wamid is a trial send's (called by the webhook applier, inside
    its write transaction), among the unapplied events of id <= `up_to` when given (the applier's window:
    looking through the whole backlog on every pass made a large one slow to drain). Returns how many
    events were stamped applied."""
    events, trials, campaigns = WebhookStatusEvent.__table__, TrialSend.__table__, Campaign.__table__
    # Only statuses that came through the trial's own channel (issue 13: another channel's secret
    # cannot vouch for this one's messages).
    rows = session.execute(
        select(
            events.c.id,
            events.c.status,
            events.c.error_code,
            events.c.error_title,
            trials.c.id.label("tid"),
            trials.c.status.label("tstatus"),
        )
        .join(trials, trials.c.message_id == events.c.message_id)
        .join(campaigns, campaigns.c.id == trials.c.campaign_id)
        .where(campaigns.c.channel_id == events.c.channel_id)
        .where(events.c.applied_at.is_(None), *([events.c.id <= up_to] if up_to is not None else []))
        .order_by(events.c.id)
        .limit(max(1, int(limit)))
    ).all()
    if not rows:
        return 0
    now = utcnow()
    current: dict[int, str] = {}
    changes: dict[int, dict] = {}
    for row in rows:
        status = current.get(row.tid, row.tstatus)
        # "sending" is not a recipient status; a wamid stored means the POST was answered: rank it as sent.
        if recipient_moves_forward("sent" if status == "sending" else status, row.status):
            current[row.tid] = row.status
            values = {"status": row.status, "updated_at": now}
            if row.status == R_FAILED:
                values.update(
                    error_code=row.error_code,
                    error=f"WhatsApp could not deliver it: #{row.error_code} {row.error_title}"[:500],
                )
            changes[row.tid] = {**changes.get(row.tid, {}), **values}
    for tid, values in changes.items():
        session.execute(update(TrialSend).where(TrialSend.id == tid).values(**values))
    ids = [row.id for row in rows]
    session.execute(update(WebhookStatusEvent).where(WebhookStatusEvent.id.in_(ids)).values(applied_at=now))
    return len(ids)
