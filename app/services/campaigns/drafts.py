"""Campaign drafts for the wizard (SPEC S9–S11): create, edit each step, resume, duplicate, delete.

A Draft exists as soon as it has a name, and every step saves into it, so a user can leave and resume
at `wizard_step`. Each function re-reads the actor and checks the capability (campaigns:edit; a CSV
file as audience needs audiences:manage, like any import, except keeping a "send again to…" file, which
Hubcast wrote from an existing campaign's recipients), audit-logs what it changed, and raises
`CampaignError` with a message to show as is, having changed nothing. Sending and scheduling stay in
`app.services.sending.lifecycle` (which commits); this module leaves committing to the caller's unit of work.

`step_problems(session, campaign, step)` is the list of reasons "Next" (or "Send") is disabled: the
messages of `app.services.sending.readiness`, the check the start and the schedule make too.
"""

from __future__ import annotations

import hashlib
from datetime import UTC
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlmodel import Session, select

from app.domain import permissions as perm
from app.domain.campaign_status import DRAFT
from app.domain.readiness import STEP_STAGES, messages
from app.domain.template_rules import SENDABLE_STATUSES
from app.domain.template_support import unsendable_reason
from app.domain.variables import CONTACT_FIELDS, SOURCES, placeholder_label
from app.models import AudienceUpload, Campaign, Channel, ContactList, Segment, Template, User
from app.services.access import get_or_raise, require
from app.services.accounts import audit
from app.services.audiences import uploads
from app.services.audiences.summary import AUDIENCE_KINDS, WHATSAPP_CHANNEL_KINDS
from app.services.channels.channels import is_usable
from app.services.sending.readiness import campaign_problems, template_keys
from app.timeutil import utcnow

MAX_NAME = 200
UPLOAD_PURPOSE = "audiences"
STEPS = (1, 2, 3)


class CampaignError(ValueError):
    """The draft cannot be changed that way; the message is shown as is."""


# --- helpers ------------------------------------------------------------------------------------


def _int(value: Any, message: str) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        raise CampaignError(message) from None


def _campaign(session: Session, campaign_id: Any) -> Campaign:
    return get_or_raise(session, Campaign, campaign_id, CampaignError, "That campaign does not exist.")


def _draft(session: Session, campaign_id: Any) -> Campaign:
    campaign = _campaign(session, campaign_id)
    if campaign.status != DRAFT:
        raise CampaignError(f"“{campaign.name}” is no longer a draft; it cannot be edited.")
    return campaign


def _clean_name(name: Any) -> str:
    text = " ".join(str(name or "").split()) if isinstance(name, (str, int, float)) else ""
    if not text:
        raise CampaignError("Give the campaign a name.")
    if len(text) > MAX_NAME:
        raise CampaignError(f"A campaign name has at most {MAX_NAME} characters.")
    return text


def _touch(campaign: Campaign) -> None:
    campaign.updated_at = utcnow()


# --- drafts ---------------------------------------------------------------------------------------


def create_draft(*, session: Session, actor: User | None, name: Any) -> Campaign:
    user = require(session, actor, perm.CAMPAIGNS_EDIT)
    campaign = Campaign(name=_clean_name(name), status=DRAFT, wizard_step=1, created_by_id=user.id)
    session.add(campaign)
    session.flush()
    audit.record(
        session=session,
        actor=user,
        action="campaign.create",
        target_type="campaign",
        target_id=campaign.id,
        detail={"name": campaign.name},
    )
    return campaign


def get_draft(*, session: Session, actor: User | None, campaign_id: Any) -> Campaign:
    """The draft to resume (refused for a campaign that is no longer a draft)."""
    require(session, actor, perm.CAMPAIGNS_EDIT)
    return _draft(session, campaign_id)


def _check_audience(session: Session, user: User, kind: str, ref_id: Any, campaign: Campaign) -> int | None:
    if kind in ("", None):
        return None
    if kind not in AUDIENCE_KINDS:
        raise CampaignError("Choose the audience: a contact list, a segment or a file.")
    if ref_id in (None, ""):
        return None
    ref = _int(ref_id, "Choose the audience: a contact list, a segment or a file.")
    model = {"list": ContactList, "segment": Segment, "csv": AudienceUpload}[kind]
    if session.get(model, ref) is None:
        raise CampaignError(
            {
                "list": "That list no longer exists.",
                "segment": "That segment no longer exists.",
                "csv": "That file is gone; upload it again.",
            }[kind]
        )
    if kind == "csv" and not keeps_derived_file(session, campaign, ref):
        perm.require(user.role, perm.AUDIENCES_MANAGE)
    return ref


def is_derived_upload(session: Session, upload_id: Any) -> bool:
    """A "send again to…" file: written by Hubcast from a campaign's recipients, not brought in by a user."""
    upload = session.get(AudienceUpload, upload_id) if upload_id else None
    return upload is not None and upload.derived_from_campaign_id is not None


def keeps_derived_file(session: Session, campaign: Campaign, upload_id: Any) -> bool:
    """The draft keeps the "send again" file it already has: what a user without audiences:manage may do with
    a file audience (README Security). Choosing any other file, even another derived one, needs the right."""
    return upload_id is not None and upload_id == campaign.audience_upload_id and is_derived_upload(session, upload_id)


def _check_channel(session: Session, channel_id: Any) -> int | None:
    if channel_id in (None, ""):
        return None
    channel = session.get(Channel, _int(channel_id, "Choose a channel."))
    if channel is None:
        raise CampaignError("That channel no longer exists.")
    if channel.kind not in WHATSAPP_CHANNEL_KINDS:
        raise CampaignError(f"“{channel.name}” is not a WhatsApp channel; this flow sends WhatsApp templates only.")
    if not is_usable(channel):
        raise CampaignError(f"The channel “{channel.name}” is not connected; test its connection first.")
    return channel.id


def update_setup(
    *,
    session: Session,
    actor: User | None,
    campaign_id: Any,
    name: Any,
    audience_kind: Any = "",
    audience_ref: Any = None,
    channel_id: Any = None,
) -> Campaign:
    """Step 1: name, audience (list / segment / uploaded file) and channel. All or nothing."""
    user = require(session, actor, perm.CAMPAIGNS_EDIT)
    campaign = _draft(session, campaign_id)
    new_name = _clean_name(name)
    kind = str(audience_kind or "") if isinstance(audience_kind, str) else ""
    ref = _check_audience(session, user, kind, audience_ref, campaign)
    channel = _check_channel(session, channel_id)
    if channel != campaign.channel_id and campaign.template_id:
        # A template belongs to one channel: a new channel means choosing the message again.
        campaign.template_id, campaign.variable_mapping = None, {}
    campaign.name = new_name
    campaign.audience_kind = kind
    campaign.audience_list_id = ref if kind == "list" else None
    campaign.audience_segment_id = ref if kind == "segment" else None
    campaign.audience_upload_id = ref if kind == "csv" else None
    campaign.channel_id = channel
    _touch(campaign)
    audit.record(
        session=session,
        actor=user,
        action="campaign.setup",
        target_type="campaign",
        target_id=campaign.id,
        detail={"audience": kind, "ref": ref, "channel_id": channel},
    )
    return campaign


def register_upload(*, session: Session, actor: User | None, path: str, original_name: str, check) -> AudienceUpload:
    """Record a checked CSV (stored by `uploads.store_upload(purpose="audiences")`) as a campaign audience."""
    user = require(session, actor, perm.CAMPAIGNS_EDIT)
    perm.require(user.role, perm.AUDIENCES_MANAGE)
    return _record_upload(session, user, path, original_name, check, None)


def register_derived_upload(
    *, session: Session, actor: User | None, path: str, original_name: str, check, source: Campaign
) -> AudienceUpload:
    """Record a "send again to…" file that `send_again` wrote from `source`'s recipients: a frozen subset of
    an existing campaign, not data a user brings in, so campaigns:edit (and seeing the campaign) is enough."""
    user = require(session, actor, perm.CAMPAIGNS_EDIT)
    perm.require(user.role, perm.CAMPAIGNS_VIEW)
    return _record_upload(session, user, path, original_name, check, source.id)


def _record_upload(
    session: Session, user: User, path: str, original_name: str, check, derived_from: int | None
) -> AudienceUpload:
    owned = uploads.owned_path(path, UPLOAD_PURPOSE)
    if owned is None:
        raise CampaignError("Upload the CSV file again.")
    digest = hashlib.sha256()
    with open(owned, "rb") as fh:
        while chunk := fh.read(1024 * 1024):
            digest.update(chunk)
    upload = AudienceUpload(
        original_filename=str(original_name)[:255],
        stored_path=str(owned),
        size_bytes=check.size_bytes,
        sha256=digest.hexdigest(),
        delimiter=check.delimiter,
        id_column=check.id_column,
        columns=list(check.columns),
        row_count=check.rows,
        valid_count=check.valid,
        invalid_count=check.invalid,
        duplicate_count=check.duplicates,
        uploaded_by_id=user.id,
        derived_from_campaign_id=derived_from,
    )
    session.add(upload)
    session.flush()
    detail = {"file": upload.original_filename, "rows": check.rows, "valid": check.valid, "invalid": check.invalid}
    audit.record(
        session=session,
        actor=user,
        action="campaign.upload",
        target_type="audience_upload",
        target_id=upload.id,
        detail={**detail, "derived_from": derived_from} if derived_from else detail,
    )
    return upload


def _audience_fields(session: Session, campaign: Campaign) -> list[str]:
    """What a variable can be mapped to: contact fields (list/segment) or the CSV's columns."""
    if campaign.audience_kind == "csv":
        upload = session.get(AudienceUpload, campaign.audience_upload_id) if campaign.audience_upload_id else None
        return list(upload.columns) if upload else []
    return list(CONTACT_FIELDS)


def _clean_mapping(session: Session, campaign: Campaign, template: Template, mapping: Any) -> dict:
    keys = template_keys(template)
    mapping = dict(mapping) if hasattr(mapping, "items") else {}
    unknown = [str(k) for k in mapping if k not in keys]
    if unknown:
        raise CampaignError("The template has no variable " + ", ".join(unknown)[:200] + ".")
    csv = campaign.audience_kind == "csv"
    columns = {c.lower() for c in _audience_fields(session, campaign)} if csv else set()
    out: dict[str, dict] = {}
    for key in keys:
        spec = mapping.get(key)
        if not hasattr(spec, "get"):
            continue
        source = str(spec.get("source") or "").lower()
        value = str(spec.get("key") if spec.get("key") is not None else spec.get("value") or "").strip()[:200]
        fallback = " ".join(str(spec.get("fallback") or "").split())[:1024]
        if source not in SOURCES:
            raise CampaignError(f"Say where the value of {placeholder_label(key)} comes from.")
        if source == "field" and not csv and value not in CONTACT_FIELDS and not value.startswith("custom."):
            raise CampaignError(f"“{value}” is not a contact field ({placeholder_label(key)}).")
        if source == "field" and csv:
            source = "column"  # a file audience has columns, not contact fields
        if source == "column" and value.lower() not in columns:
            raise CampaignError(f"The file has no column “{value}” ({placeholder_label(key)}).")
        out[key] = (
            {"source": source, "value": value, "fallback": fallback}
            if source == "text"
            else {"source": source, "key": value, "fallback": fallback}
        )
    return out


def _sendable_template(session: Session, campaign: Campaign, template_id: Any) -> Template:
    template = session.get(Template, _int(template_id, "Choose a template."))
    if template is None:
        raise CampaignError("That template no longer exists.")
    if campaign.channel_id is None or template.channel_id != campaign.channel_id:
        raise CampaignError(f"The template “{template.name}” belongs to another channel; choose the channel first.")
    if template.status not in SENDABLE_STATUSES:
        raise CampaignError(f"The template “{template.name}” is not approved by WhatsApp (status {template.status}).")
    if reason := unsendable_reason(template.components):
        raise CampaignError(f"“{template.name}”: {reason}")
    return template


def update_design(
    *, session: Session, actor: User | None, campaign_id: Any, template_id: Any, mapping: Any = None
) -> Campaign:
    """Step 2: the template (APPROVED, of the campaign's channel) and where each variable comes from."""
    user = require(session, actor, perm.CAMPAIGNS_EDIT)
    campaign = _draft(session, campaign_id)
    if template_id in (None, ""):
        campaign.template_id, campaign.variable_mapping = None, {}
    else:
        template = _sendable_template(session, campaign, template_id)
        campaign.variable_mapping = _clean_mapping(session, campaign, template, mapping)
        campaign.template_id = template.id
    _touch(campaign)
    audit.record(
        session=session,
        actor=user,
        action="campaign.design",
        target_type="campaign",
        target_id=campaign.id,
        detail={"template_id": campaign.template_id, "variables": sorted(campaign.variable_mapping)},
    )
    return campaign


def set_wizard_step(*, session: Session, actor: User | None, campaign_id: Any, step: Any) -> Campaign:
    require(session, actor, perm.CAMPAIGNS_EDIT)
    campaign = _draft(session, campaign_id)
    number = _int(step, "Unknown step.")
    if number not in STEPS:
        raise CampaignError("Unknown step.")
    campaign.wizard_step = number
    _touch(campaign)
    return campaign


def duplicate_campaign(*, session: Session, actor: User | None, campaign_id: Any) -> Campaign:
    """Any campaign -> a new Draft with the same name (prefixed), audience, channel, template and mapping."""
    user = require(session, actor, perm.CAMPAIGNS_EDIT)
    source = _campaign(session, campaign_id)
    copy = Campaign(
        name=("Copy of " + source.name)[:MAX_NAME],
        status=DRAFT,
        wizard_step=1,
        audience_kind=source.audience_kind,
        audience_list_id=source.audience_list_id,
        audience_segment_id=source.audience_segment_id,
        audience_upload_id=source.audience_upload_id,
        channel_id=source.channel_id,
        template_id=source.template_id,
        variable_mapping=dict(source.variable_mapping or {}),
        timezone=source.timezone,
        created_by_id=user.id,
    )
    session.add(copy)
    session.flush()
    audit.record(
        session=session,
        actor=user,
        action="campaign.duplicate",
        target_type="campaign",
        target_id=copy.id,
        detail={"from": source.id},
    )
    return copy


def current_schedule(*, session: Session, actor: User | None, campaign_id: Any) -> tuple[str, str, str]:
    """(time zone, local date, local time) of a Scheduled campaign's run, in the zone it was scheduled in:
    what the reschedule dialog starts from, so a user moves the time they chose rather than retyping it."""
    require(session, actor, perm.CAMPAIGNS_SEND)
    campaign = _campaign(session, campaign_id)
    if campaign.status != "scheduled" or campaign.scheduled_at is None:
        raise CampaignError("Only scheduled campaigns can be rescheduled.")
    tz = campaign.timezone or "UTC"
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        tz, zone = "UTC", ZoneInfo("UTC")
    at = campaign.scheduled_at if campaign.scheduled_at.tzinfo else campaign.scheduled_at.replace(tzinfo=UTC)
    local = at.astimezone(zone)
    return tz, f"{local:%Y-%m-%d}", f"{local:%H:%M}"


def delete_draft(*, session: Session, actor: User | None, campaign_id: Any) -> None:
    user = require(session, actor, perm.CAMPAIGNS_EDIT)
    campaign = _campaign(session, campaign_id)
    if campaign.status != DRAFT:
        raise CampaignError(f"Only drafts can be deleted; “{campaign.name}” is {campaign.status}.")
    audit.record(
        session=session,
        actor=user,
        action="campaign.delete",
        target_type="campaign",
        target_id=campaign.id,
        detail={"name": campaign.name},
    )
    session.delete(campaign)
    session.flush()


# --- what the wizard shows -----------------------------------------------------------------------


def step_problems(*, session: Session, actor: User | None, campaign_id: Any, step: Any) -> list[str]:
    """Why "Next" (step 1, 2) or "Send"/"Schedule" (step 3) is disabled; empty when it is enabled."""
    require(session, actor, perm.CAMPAIGNS_VIEW)
    campaign = _campaign(session, campaign_id)
    number = _int(step, "Unknown step.")
    if number < 1:
        return []
    stage = STEP_STAGES.get(number, STEP_STAGES[max(STEP_STAGES)])
    return messages(campaign_problems(session, campaign, stage))


def sendable_templates(*, session: Session, actor: User | None, channel_id: Any) -> list[Template]:
    """APPROVED templates of the channel that Hubcast can fill (`template_support`), by name then language."""
    require(session, actor, perm.CAMPAIGNS_VIEW)
    if channel_id in (None, ""):
        return []
    cid = _int(channel_id, "Choose a channel.")
    query = (
        select(Template)
        .where(Template.channel_id == cid, Template.status.in_(tuple(SENDABLE_STATUSES)))
        .order_by(Template.name, Template.language)
    )
    return [t for t in session.exec(query).all() if not unsendable_reason(t.components)]


def unfillable_templates(*, session: Session, actor: User | None, channel_id: Any) -> list[dict[str, str]]:
    """APPROVED templates of the channel the wizard does not offer because Hubcast cannot fill them, with
    the reason (the wizard says so, so nobody wonders where a template went)."""
    require(session, actor, perm.CAMPAIGNS_VIEW)
    if channel_id in (None, ""):
        return []
    cid = _int(channel_id, "Choose a channel.")
    query = (
        select(Template)
        .where(Template.channel_id == cid, Template.status.in_(tuple(SENDABLE_STATUSES)))
        .order_by(Template.name, Template.language)
    )
    return [
        {"name": f"{t.name} · {t.language}", "reason": reason}
        for t in session.exec(query).all()
        if (reason := unsendable_reason(t.components))
    ]


def usable_channels(*, session: Session, actor: User | None) -> list[Channel]:
    """Connected WhatsApp (Cloud API or Sandbox) channels: the only ones a campaign may choose."""
    require(session, actor, perm.CAMPAIGNS_VIEW)
    query = select(Channel).where(Channel.kind.in_(WHATSAPP_CHANNEL_KINDS)).order_by(Channel.name)
    return [c for c in session.exec(query).all() if is_usable(c)]
