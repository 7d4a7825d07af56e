"""Message templates (SPEC S8): the list and a template's detail, templates written for the Sandbox,
and the sync of a channel's templates from its WhatsApp Business Account over HTTP.

Sync behaviour (upsert by (channel, name, language)):
- every page of GET /{waba-id}/message_templates is fetched first; a failure on any page writes
  nothing, and in particular marks nothing as removed (a partial listing proves nothing);
- new templates are created; known ones take Meta's status, category, parameter format, components and
  id (so APPROVED -> PAUSED shows at once and the wizard stops offering it);
- a template Hubcast got from this account earlier (it has Meta's id) that the account no longer
  returns is kept, with status DELETED: campaigns and their history still point at it. Rows are never
  deleted. Templates written in Hubcast for the Sandbox (no Meta id) are not the account's to remove.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from app.domain import permissions as perm
from app.domain import template_rules as rules
from app.domain.template_components import template_variables
from app.domain.template_rules import TemplateDraft, TemplateRuleError
from app.domain.template_support import unsendable_reason
from app.domain.whatsapp_markup import business_name, profile_initials
from app.models import Campaign, Channel, Template, User
from app.services.access import get_or_raise, require
from app.services.accounts import audit
from app.services.channels.channels import (
    DISCONNECTED,
    KIND_SANDBOX,
    client_for,
    connection_facts,
    describe_api_error,
    public_api_error,
    run_async,
)
from app.services.channels.sandbox_channel import sandbox_channel
from app.services.paging import Page, fmt_time, paging
from app.timeutil import utcnow
from app.whatsapp.errors import WhatsAppApiError

log = logging.getLogger(__name__)

SYNC_TIMEOUT_S = 30
SYNC_PAGE_SIZE = 100
MAX_REMOTE_TEMPLATES = 20_000  # a runaway listing must not fill the database


class TemplateError(ValueError):
    """Bad input or an impossible operation; `errors` lists every problem (shown as is)."""

    def __init__(self, errors: list[str] | str):
        errors = [errors] if isinstance(errors, str) else list(errors)
        super().__init__(" ".join(errors))
        self.errors = errors


@dataclass
class SyncResult:
    channel: str
    fetched: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0  # no longer returned by the account: kept with status DELETED
    skipped: list[str] = field(default_factory=list)  # malformed entries, with the reason

    def summary(self) -> str:
        text = (
            f"{self.channel}: {self.fetched} templates fetched; {self.created} new, {self.updated} updated, "
            f"{self.unchanged} unchanged"
        )
        if self.removed:
            text += f", {self.removed} no longer on the account (kept as DELETED)"
        if self.skipped:
            text += f", {len(self.skipped)} skipped"
        return text + "."


# --- reading -----------------------------------------------------------------------------------------


def templates_page(
    *,
    session: Session,
    actor: User,
    status: str = "",
    channel_id: Any = None,
    search: str = "",
    page: int = 1,
    page_size: int = 50,
) -> Page:
    """The Templates table, filtered and paged on the server."""
    require(session, actor, perm.TEMPLATES_VIEW)
    page, page_size = paging(page, page_size)
    query = select(Template, Channel.name, Channel.kind).join(Channel, Template.channel_id == Channel.id)
    count = select(func.count()).select_from(Template)
    conditions = []
    if status:
        conditions.append(Template.status == status)
    if channel_id not in (None, ""):
        try:
            conditions.append(Template.channel_id == int(channel_id))
        except (TypeError, ValueError):
            raise TemplateError("Unknown channel.") from None
    if search.strip():
        conditions.append(Template.name.ilike(f"%{search.strip()}%"))
    for cond in conditions:
        query, count = query.where(cond), count.where(cond)
    total = session.exec(count).one()
    rows = session.exec(
        query.order_by(Template.name, Template.language, Template.id).offset((page - 1) * page_size).limit(page_size)
    ).all()
    return Page(
        [
            {
                "id": t.id,
                "channel": ch,
                "sandbox": kind == KIND_SANDBOX,
                "name": t.name,
                "language": t.language,
                "category": t.category,
                "status": t.status,
                "parameter_format": t.parameter_format,
                "synced": fmt_time(t.synced_at),
                "quality": t.quality_score,
                "status_reason": t.status_reason,
                # Components Hubcast cannot fill: never offered in the wizard; the reason is shown here.
                "unsendable": unsendable_reason(t.components),
            }
            for t, ch, kind in rows
        ],
        total,
        page,
        page_size,
    )


def template_channels(*, session: Session, actor: User) -> list[dict]:
    """Channels for the filter and the per-channel sync buttons, with template counts."""
    require(session, actor, perm.TEMPLATES_VIEW)
    counts = dict(session.exec(select(Template.channel_id, func.count()).group_by(Template.channel_id)).all())
    synced = dict(
        session.exec(select(Template.channel_id, func.max(Template.synced_at)).group_by(Template.channel_id)).all()
    )
    return [
        {
            "id": c.id,
            "name": c.name,
            "sandbox": c.kind == KIND_SANDBOX,
            "status": c.status,
            "templates": counts.get(c.id, 0),
            "synced": fmt_time(synced.get(c.id)),
            **preview_sender(c),
        }
        for c in session.exec(select(Channel).order_by(Channel.name)).all()
    ]


def preview_sender(channel: Channel | None) -> dict[str, str]:
    """Who a message preview says it is from: the channel's WhatsApp display name (else its name) and its
    profile initials; empty without a channel (the preview then says "Your business")."""
    name = business_name(channel.display_name, channel.name) if channel else ""
    return {"business": name, "initials": profile_initials(name) if name else ""}


def template_detail(*, session: Session, actor: User, template_id: Any) -> dict[str, Any]:
    """Everything the detail view shows: facts, Meta's components, and the variables a campaign fills."""
    require(session, actor, perm.TEMPLATES_VIEW)
    template = get_or_raise(session, Template, template_id, TemplateError, "Unknown template.")
    channel = session.get(Channel, template.channel_id)
    components = [c for c in (template.components or []) if isinstance(c, Mapping)]
    try:
        variables = template_variables(components, template.parameter_format)
    except (AttributeError, TypeError, ValueError, IndexError):  # odd JSON from an account: still show the rest
        variables = []
    campaigns = session.exec(
        select(func.count()).select_from(Campaign).where(Campaign.template_id == template.id)
    ).one()
    sections = {"header": "Header", "body": "Body", "button": "Button"}
    return {
        "id": template.id,
        "name": template.name,
        "language": template.language,
        "language_label": rules.LANGUAGES.get(template.language, template.language),
        "category": template.category,
        "status": template.status,
        "sendable": template.status in rules.SENDABLE_STATUSES and not unsendable_reason(components),
        "unsendable": unsendable_reason(components),
        "quality": template.quality_score,
        "status_reason": template.status_reason,
        "parameter_format": template.parameter_format,
        "channel": channel.name if channel else "",
        "sandbox": bool(channel and channel.kind == KIND_SANDBOX),
        # The preview's sender: the channel's WhatsApp display name and its profile initials.
        **preview_sender(channel),
        "external_id": template.external_id,
        "synced": fmt_time(template.synced_at),
        "updated": fmt_time(template.updated_at),
        "campaigns": int(campaigns),
        "components": components,
        "variables": [
            {
                "key": v.key,
                "component": sections.get(v.component, v.component.title())
                + (f" {v.button_index + 1}" if v.button_index is not None else ""),
                "name": "{{" + v.name + "}}" if v.kind == "text" else v.name,
                "kind": v.kind,
                "example": v.example,
            }
            for v in variables
        ],
    }


# --- writing a template for the Sandbox -------------------------------------------------------------


def sandbox_channel_of(session: Session) -> Channel | None:
    return sandbox_channel(session=session)


def create_sandbox_template(*, session: Session, actor: User, channel_id: Any, draft: TemplateDraft) -> Template:
    """Write a template for the Sandbox, checked by Meta's rules and APPROVED at once (the Sandbox has no
    review). Real numbers' templates are written and reviewed in Meta's WhatsApp Manager, then synced."""
    actor = require(session, actor, perm.TEMPLATES_MANAGE)
    channel = get_or_raise(session, Channel, channel_id, TemplateError, "Unknown channel.")
    if channel.kind != KIND_SANDBOX:
        raise TemplateError(
            f"Templates for {channel.name} are written and reviewed in Meta's WhatsApp Manager; "
            'use "Sync templates" to bring them here. Only the Sandbox accepts templates '
            "written in Hubcast."
        )
    try:
        components = rules.build_components(draft)
    except TemplateRuleError as exc:
        raise TemplateError(exc.errors) from None
    duplicate = session.exec(
        select(Template.id).where(
            Template.channel_id == channel.id, Template.name == draft.name, Template.language == draft.language
        )
    ).first()
    if duplicate is not None:
        raise TemplateError(
            f"{channel.name} already has a template {draft.name} in {draft.language}: choose "
            "another name, or another language for a translation."
        )
    now = utcnow()
    template = Template(
        channel_id=channel.id,
        name=draft.name,
        language=draft.language,
        category=draft.category,
        status=rules.APPROVED,
        parameter_format=draft.parameter_format,
        components=components,
        external_id="",
        synced_at=None,
        created_at=now,
        updated_at=now,
    )
    session.add(template)
    try:
        session.flush()
    except IntegrityError:  # a concurrent create of the same (channel, name, language)
        session.rollback()
        raise TemplateError(f"{channel.name} already has a template {draft.name} in {draft.language}.") from None
    audit.record(
        session=session,
        actor=actor,
        action="template.create",
        target_type="template",
        target_id=template.id,
        detail={
            "channel": channel.name,
            "name": template.name,
            "language": template.language,
            "category": template.category,
        },
    )
    _register_with_sandbox(channel, template)
    return template


def _register_with_sandbox(channel: Channel, template: Template) -> None:
    """Tell the running Sandbox about the new template, so it can be sent at once. Best effort: when
    the Sandbox is not running, `hubcast sandbox` loads the channel's templates from the database
    at its next start, so nothing is lost."""
    facts = connection_facts(channel)

    async def create() -> dict:
        async with client_for(facts, timeout=10) as client:
            return await client.create_template(
                name=template.name,
                language=template.language,
                category=template.category,
                components=template.components,
                parameter_format=template.parameter_format,
            )

    try:
        template.external_id = str(run_async(create).get("id", ""))[:64]
    except Exception as exc:
        log.info("sandbox: template %s not registered now (%s); it loads at the next Sandbox start", template.name, exc)


# --- sync from the WhatsApp Business Account ---------------------------------------------------------


async def _fetch_all(facts: Any, page_size: int) -> list[dict]:
    out: list[dict] = []
    async with client_for(facts, timeout=SYNC_TIMEOUT_S) as client:
        async for page in client.template_pages(limit=page_size):
            out.extend(page)
            if len(out) > MAX_REMOTE_TEMPLATES:
                raise TemplateError(
                    f"The account returned more than {MAX_REMOTE_TEMPLATES} templates; "
                    "sync stopped without changing anything."
                )
    return out


def _normalise(item: Any) -> tuple[dict[str, Any] | None, str]:
    """A remote template as the columns we store, or (None, why it was skipped)."""
    if not isinstance(item, Mapping):
        return None, "not a template object"
    name, language = item.get("name"), item.get("language")
    if not isinstance(name, str) or not name or len(name) > 512:
        return None, f"invalid name {str(name)[:60]!r}"
    if not isinstance(language, str) or not language or len(language) > 16:
        return None, f"{name}: invalid language {str(language)[:20]!r}"
    components = item.get("components") or []
    if not isinstance(components, list) or not all(isinstance(c, Mapping) for c in components):
        return None, f"{name} ({language}): components are not a list of objects"
    status = str(item.get("status") or "PENDING").upper()[:16]
    category = str(item.get("category") or "MARKETING").upper()[:16]
    fmt = str(item.get("parameter_format") or rules.POSITIONAL).upper()[:16]
    return {
        "name": name,
        "language": language,
        "status": status,
        "category": category,
        "parameter_format": fmt,
        "components": [dict(c) for c in components],
        "external_id": str(item.get("id") or "")[:64],
    }, ""


_SYNCED_FIELDS = ("status", "category", "parameter_format", "components", "external_id")


def sync_templates(
    *, session: Session, actor: User | None, channel_id: Any, page_size: int = SYNC_PAGE_SIZE
) -> SyncResult:
    """Bring the channel's templates in line with its WhatsApp Business Account (see the module doc).

    `actor=None` is the operator's CLI (`hubcast templates sync`), which runs with shell access."""
    if actor is not None:
        actor = require(session, actor, perm.TEMPLATES_MANAGE)
    channel = get_or_raise(session, Channel, channel_id, TemplateError, "Unknown channel.")
    if channel.status == DISCONNECTED:
        raise TemplateError(f"{channel.name} is disconnected: test its connection on the Channels page first.")
    if not channel.business_account_id:
        raise TemplateError(f"{channel.name} has no WhatsApp Business Account ID.")
    facts = connection_facts(channel)
    try:
        remote = run_async(lambda: _fetch_all(facts, max(1, min(int(page_size), 1000))))
    except WhatsAppApiError as exc:
        # What the host answered (possibly a raw body) only for admins and the operator's CLI (issue 13 item 5).
        admin = actor is None or perm.can(actor.role, perm.CHANNELS_MANAGE)
        said = describe_api_error(exc) if admin else public_api_error(exc)
        raise TemplateError(f"Could not list {channel.name}'s templates: {said}") from None

    result = SyncResult(channel=channel.name)
    now = utcnow()
    existing = {
        (t.name, t.language): t for t in session.exec(select(Template).where(Template.channel_id == channel.id)).all()
    }
    seen: set[tuple[str, str]] = set()
    for item in remote:
        values, problem = _normalise(item)
        if values is None:
            result.skipped.append(problem)
            continue
        key = (values["name"], values["language"])
        if key in seen:
            result.skipped.append(f"{key[0]} ({key[1]}): listed twice")
            continue
        seen.add(key)
        result.fetched += 1
        template = existing.get(key)
        if template is None:
            session.add(Template(channel_id=channel.id, synced_at=now, created_at=now, updated_at=now, **values))
            result.created += 1
            continue
        changed = [f for f in _SYNCED_FIELDS if getattr(template, f) != values[f]]
        for f in changed:
            setattr(template, f, values[f])
        if "status" in changed:
            template.status_reason = ""  # a webhook's reason described the status this sync replaces
        template.synced_at = now
        if changed:
            template.updated_at = now
            result.updated += 1
        else:
            result.unchanged += 1
        session.add(template)
    for key, template in existing.items():
        if key not in seen and template.external_id and template.status != rules.DELETED:
            template.status, template.updated_at = rules.DELETED, now
            session.add(template)
            result.removed += 1
    try:
        session.flush()
    except IntegrityError:  # another sync of the same channel inserted the same template meanwhile
        session.rollback()
        raise TemplateError(
            f"Another sync of {channel.name} ran at the same time; nothing was changed. Try again."
        ) from None
    audit.record(
        session=session,
        actor=actor,
        action="templates.sync",
        target_type="channel",
        target_id=channel.id,
        actor_email="" if actor else "cli",
        detail={
            "channel": channel.name,
            "fetched": result.fetched,
            "created": result.created,
            "updated": result.updated,
            "unchanged": result.unchanged,
            "removed": result.removed,
            "skipped": len(result.skipped),
        },
    )
    return result
