"""What the campaign wizard shows of a draft, as plain values (strings, dicts, lists) ready for Reflex vars.

The wizard's State classes (state/wizard*.py) hold no rule and read no table: they call these functions and
copy the result into their vars. Each function re-checks the actor's capability (through the services it
calls, or `access.require`), so a crafted event gets the same refusal as everywhere else.

- `wizard_options`: the lists, segments and usable channels a draft may choose.
- `open_draft`: a draft's saved choices (to resume it).
- `draft_view`: everything derived from the saved draft: audience summary, template choice and variables,
  preview samples, the review of step 3 and why the current step cannot go on.
- `mapping_from_rows` / the rows of `DraftView.variables`: the variable mapping as the wizard edits it.
- `trial_status`: the delivery of the last "Send a test message" (a trial send), in words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from app.domain import permissions as perm
from app.domain.variables import CONTACT_FIELDS, placeholder_label
from app.models import AudienceUpload, Campaign, Channel, Template, User
from app.services import access
from app.services.audiences import lists as lists_service
from app.services.audiences import segments as segments_service
from app.services.audiences import summary as audience_service
from app.services.campaigns import drafts
from app.services.campaigns.design_preview import design_preview
from app.services.campaigns.trial_send import latest_status
from app.services.channels.templates import preview_sender
from app.services.sending.lifecycle import SendingError
from app.services.sending.review_limits import limits_review
from app.whatsapp.components import template_variables

FIXED_TEXT = "__text__"  # the "same text for everyone" choice of a variable's source
# What the wizard shows as the refusal of a draft change (the message of any of these).
DRAFT_ERRORS = (drafts.CampaignError, SendingError, audience_service.AudienceError, perm.PermissionDenied)

_TEST_STATUS_WORDS = {
    "sent": "sent",
    "delivered": "delivered to the phone",
    "read": "read",
    "failed": "not delivered",
    "unknown": "not confirmed by WhatsApp yet",
}
_AUDIENCE_LABELS = {"list": "Contact list", "segment": "Segment", "csv": "File"}


@dataclass
class WizardOptions:
    lists: list[dict[str, str]] = field(default_factory=list)  # {"id", "name"}
    segments: list[dict[str, str]] = field(default_factory=list)
    channels: list[dict[str, str]] = field(default_factory=list)


@dataclass
class DraftView:
    problems: list[str] = field(default_factory=list)
    summary: dict[str, str] = field(default_factory=dict)  # the audience summary of step 1 ({"error"} if gone)
    field_options: list[str] = field(default_factory=list)  # contact fields / file columns a variable may use
    template_options: list[dict[str, str]] = field(default_factory=list)
    unfillable_templates: list[dict[str, str]] = field(default_factory=list)  # {"name", "reason"}: not offered
    variables: list[dict[str, str]] = field(default_factory=list)  # {key, label, component, ref, fallback, example}
    components: list[dict] = field(default_factory=list)  # the chosen template's components (for the preview)
    samples: list[dict] = field(default_factory=list)  # {"address", "values", ...} of the first recipients
    skipped: int = 0
    review: dict[str, str] = field(default_factory=dict)
    mapping_rows: list[dict[str, str]] = field(default_factory=list)
    business_name: str = ""  # the channel's WhatsApp display name, shown atop the preview
    business_initials: str = ""


def wizard_options(*, session: Session, actor: User | None) -> WizardOptions:
    lists = [{"id": str(r["id"]), "name": r["name"]} for r in lists_service.list_lists(session=session, actor=actor)]
    segments = [
        {"id": str(r["id"]), "name": r["name"]}
        for r in segments_service.list_segments(session=session, actor=actor, with_counts=False)
    ]
    channels = [
        {
            "id": str(c.id),
            "name": c.name + (" (Sandbox)" if c.kind == "sandbox" and "sandbox" not in c.name.lower() else ""),
        }
        for c in drafts.usable_channels(session=session, actor=actor)
    ]
    return WizardOptions(lists=lists, segments=segments, channels=channels)


def open_draft(*, session: Session, actor: User | None, campaign_id: Any) -> dict[str, Any]:
    """The saved choices of a draft, as the wizard's vars (ids as strings, "" for none)."""
    campaign = drafts.get_draft(session=session, actor=actor, campaign_id=campaign_id)
    return {
        "campaign_id": str(campaign.id),
        "name": campaign.name,
        "audience_kind": campaign.audience_kind or "segment",
        "list_id": str(campaign.audience_list_id or ""),
        "segment_id": str(campaign.audience_segment_id or ""),
        "upload_id": str(campaign.audience_upload_id or ""),
        "channel_id": str(campaign.channel_id or ""),
        "template_id": str(campaign.template_id or ""),
        "timezone": campaign.timezone or "",
        "step": campaign.wizard_step if campaign.wizard_step in drafts.STEPS else 1,
    }


def draft_view(*, session: Session, actor: User | None, campaign_id: int | None, step: int) -> DraftView:
    """Everything the wizard derives from the saved draft (nothing but the name problem before it exists)."""
    access.require(session, actor, perm.CAMPAIGNS_VIEW)
    campaign = session.get(Campaign, campaign_id) if campaign_id else None
    view = DraftView()
    if campaign is None:
        view.problems = ["Give the campaign a name."]
        return view
    _summary(session, actor, campaign, view)
    _design(session, actor, campaign, view)
    view.problems = drafts.step_problems(session=session, actor=actor, campaign_id=campaign.id, step=step)
    _review(session, campaign, view)
    return view


def _summary(session: Session, actor: User | None, campaign: Campaign, view: DraftView) -> None:
    if not campaign.audience_kind:
        return
    try:
        if campaign.audience_kind == "csv":
            upload = session.get(AudienceUpload, campaign.audience_upload_id) if campaign.audience_upload_id else None
            if upload is None:
                return
            view.summary = {
                "name": upload.original_filename,
                "total": f"{upload.row_count:,}",
                "reach": f"{upload.valid_count:,}",
                "invalid": f"{upload.invalid_count:,}",
                "duplicates": f"{upload.duplicate_count:,}",
                "not_reachable": "0",
                "unsubscribed": "0",
                "kind": "csv",
                # A "send again to…" copy of an earlier campaign's recipients: kept without audiences:manage.
                "derived": "yes" if upload.derived_from_campaign_id is not None else "",
            }
            view.field_options = list(upload.columns)
            return
        ref = campaign.audience_list_id if campaign.audience_kind == "list" else campaign.audience_segment_id
        if ref is None:
            return
        s = audience_service.audience_summary(
            session=session, actor=actor, kind=campaign.audience_kind, ref_id=ref, channel_id=campaign.channel_id
        )
    except DRAFT_ERRORS as exc:
        view.summary = {"error": str(exc)}
        return
    view.summary = {
        "name": s.name,
        "total": f"{s.total:,}",
        "reach": f"{s.reach:,}",
        "not_reachable": f"{s.not_reachable:,}",
        "unsubscribed": f"{s.unsubscribed:,}",
        "no_channel": f"{s.no_channel:,}",
        "invalid": "0",
        "duplicates": "0",
        "kind": s.kind,
    }
    view.field_options = [f for f in s.variable_fields if f in CONTACT_FIELDS or f.startswith("custom.")]


def _design(session: Session, actor: User | None, campaign: Campaign, view: DraftView) -> None:
    if not campaign.channel_id:
        return
    sender = preview_sender(session.get(Channel, campaign.channel_id))
    view.business_name, view.business_initials = sender["business"], sender["initials"]
    view.template_options = [
        {"id": str(t.id), "name": f"{t.name} · {t.language}"}
        for t in drafts.sendable_templates(session=session, actor=actor, channel_id=campaign.channel_id)
    ]
    view.unfillable_templates = drafts.unfillable_templates(
        session=session, actor=actor, channel_id=campaign.channel_id
    )
    template = session.get(Template, campaign.template_id) if campaign.template_id else None
    if template is None:
        return
    view.components = list(template.components or [])
    mapping = campaign.variable_mapping or {}
    for v in template_variables(view.components, template.parameter_format):
        spec = mapping.get(v.key) or {}
        ref = FIXED_TEXT if spec.get("source") == "text" else str(spec.get("key") or "")
        fallback = str(spec.get("value") or "") if ref == FIXED_TEXT else str(spec.get("fallback") or "")
        view.variables.append(
            {
                "key": v.key,
                "label": placeholder_label(v.key),
                "component": v.component,
                "ref": ref,
                "fallback": fallback,
                "example": v.example,
            }
        )
    preview = design_preview(session=session, actor=actor, campaign_id=campaign.id)
    view.samples, view.skipped = list(preview.samples), preview.skipped


def _review(session: Session, campaign: Campaign, view: DraftView) -> None:
    channel = session.get(Channel, campaign.channel_id) if campaign.channel_id else None
    template = session.get(Template, campaign.template_id) if campaign.template_id else None
    audience_label = _AUDIENCE_LABELS.get(campaign.audience_kind, "")
    view.review = {
        "name": campaign.name,
        "audience": f"{audience_label}: {view.summary.get('name', '—')}",
        "reach": view.summary.get("reach", "0"),
        "channel": channel.name if channel else "—",
        "template": f"{template.name} · {template.language}" if template else "—",
        # Meta's daily messaging limit and the frequency cap, counted before sending (issue 12)
        **limits_review(session, campaign, _count(view.summary.get("reach", "0"))),
    }
    view.mapping_rows = [
        {
            "label": v["label"],
            "source": ("Text: " + v["fallback"]) if v["ref"] == FIXED_TEXT else (v["ref"] or "—"),
            "fallback": "" if v["ref"] == FIXED_TEXT else v["fallback"],
        }
        for v in view.variables
    ]


def _count(text: str) -> int:
    try:
        return int(str(text).replace(",", ""))
    except ValueError:
        return 0


def mapping_from_rows(rows: list[dict[str, str]], audience_kind: str) -> dict[str, dict[str, str]]:
    """The draft's variable mapping from the wizard's variable rows (a fixed text, a field or a file column)."""
    mapping: dict[str, dict[str, str]] = {}
    for v in rows:
        if v["ref"] == FIXED_TEXT:
            mapping[v["key"]] = {"source": "text", "value": v["fallback"]}
        elif v["ref"]:
            source = "column" if audience_kind == "csv" else "field"
            mapping[v["key"]] = {"source": source, "key": v["ref"], "fallback": v["fallback"]}
    return mapping


def trial_status(
    *, session: Session, actor: User | None, campaign_id: int | None, trial_send_id: Any
) -> tuple[bool, str] | None:
    """(delivered or not, the sentence to show) for a trial message of this campaign; None if it is not one."""
    access.require(session, actor, perm.CAMPAIGNS_EDIT)
    row = latest_status(session, trial_send_id)
    if row is None or row.campaign_id != campaign_id:
        return None
    words = _TEST_STATUS_WORDS.get(row.status, row.status)
    text = f"Test to {row.to}: {words}; it is not counted in the campaign." + (f" {row.error}" if row.error else "")
    return row.status != "failed", text
