"""Whether a campaign may go on: the facts read from the database, judged by `app.domain.readiness`.

The one readiness check of the app: the wizard's steps (`drafts.step_problems`), start, schedule, the
scheduled run and resume (`lifecycle`), and the trial send (`campaigns.trial_send`) all call
`campaign_problems(session, campaign, stage)` and get `Problem(code, message)`s back.

It sits in `sending/` rather than `campaigns/` because the campaigns subsystem already depends on this
one (the trial send uses the sender's rate limiter and config; the wizard shows `SendingError`s) while
the start needs this check: in `campaigns/` the two subsystems would import each other, which the
import-linter contract "No import cycles between service subsystems" refuses.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from app.domain import readiness as rules
from app.domain.readiness import DESIGN, SEND, SETUP, Problem
from app.domain.template_components import template_variables
from app.domain.template_support import unsendable_reason
from app.domain.variables import unmapped_keys
from app.models import AudienceUpload, Campaign, Channel, ContactList, Segment, Template
from app.services.audiences.recipients import has_recipients
from app.services.audiences.summary import AudienceError
from app.services.channels.channels import is_usable

__all__ = ["DESIGN", "SEND", "SETUP", "Problem", "audience_ref", "campaign_problems", "template_keys"]

_AUDIENCE_MODELS = {"list": ContactList, "segment": Segment, "csv": AudienceUpload}


def template_keys(template: Template) -> list[str]:
    """The template's variable keys ("body.1", "header.1", ...), in the order Meta numbers them."""
    return [v.key for v in template_variables(template.components or [], template.parameter_format)]


def audience_ref(campaign: Campaign) -> Any:
    """The id of the campaign's list, segment or file (None when no audience is chosen)."""
    return {
        "list": campaign.audience_list_id,
        "segment": campaign.audience_segment_id,
        "csv": campaign.audience_upload_id,
    }.get(campaign.audience_kind)


def _reachable(session: Session, campaign: Campaign, source: Any) -> bool:
    if campaign.audience_kind == "csv":
        return source.valid_count > 0  # counted when the file was checked (not re-read on every step)
    try:
        return has_recipients(session, campaign)
    except AudienceError:  # the segment vanished between the two reads
        return False


def facts(session: Session, campaign: Campaign, *, count_reach: bool = True) -> rules.Facts:
    ref = audience_ref(campaign)
    source = session.get(_AUDIENCE_MODELS[campaign.audience_kind], ref) if ref is not None else None
    channel = session.get(Channel, campaign.channel_id) if campaign.channel_id else None
    template = session.get(Template, campaign.template_id) if campaign.template_id else None
    return rules.Facts(
        name=campaign.name or "",
        audience_chosen=ref is not None,
        audience_exists=source is not None,
        audience_reachable=_reachable(session, campaign, source) if count_reach and source is not None else None,
        channel_name=channel.name if channel is not None else None,
        channel_connected=is_usable(channel),
        template_name=template.name if template is not None else None,
        template_status=template.status if template is not None else "",
        template_on_channel=template is not None and template.channel_id == campaign.channel_id,
        unmapped=tuple(unmapped_keys(template_keys(template), campaign.variable_mapping or {}))
        if template is not None
        else (),
        template_unsendable=unsendable_reason(template.components) if template is not None else "",
    )


def campaign_problems(session: Session, campaign: Campaign, stage: str) -> list[Problem]:
    """Why `campaign` cannot pass `stage` (SETUP, DESIGN or SEND) now; empty when it can."""
    return rules.problems(facts(session, campaign, count_reach=stage != SEND), stage)
