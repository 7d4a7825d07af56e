"""Templates page: the list (filtered, paged on the server), a template's detail with a WhatsApp-like
preview and its variables, per-channel sync (admin, advanced), and writing a Sandbox template."""

from __future__ import annotations

import asyncio
from typing import Any

import reflex as rx

from app.db import session_scope
from app.domain import permissions as perm
from app.domain import template_rules as rules
from app.domain.permissions import Actor, PermissionDenied
from app.domain.whatsapp_markup import EMPTY_PREVIEW, preview_parts
from app.services.channels import templates as templates_service
from app.services.channels.templates import TemplateError
from state.base import AppState
from state.guard import current_actor, requires
from state.rows import as_text

PAGE_SIZE = 50
DRAFT_FIELDS = (
    "name",
    "language",
    "category",
    "parameter_format",
    "header",
    "body",
    "footer",
    "button_1",
    "button_2",
    "button_3",
)
DRAFT_DEFAULTS = {
    "name": "",
    "language": "en_US",
    "category": "MARKETING",
    "parameter_format": rules.POSITIONAL,
    "header": "",
    "body": "",
    "footer": "",
    "button_1": "",
    "button_2": "",
    "button_3": "",
}
_FIELD_LIMITS = {"name": 600, "header": 300, "body": 1300, "footer": 300}


def _sync(actor: Actor, channel_id: Any) -> templates_service.SyncResult:
    with session_scope() as session:
        return templates_service.sync_templates(session=session, actor=actor, channel_id=channel_id)


class TemplatesState(AppState):
    rows: list[dict[str, str]] = []
    loaded: bool = False
    total: int = 0
    page: int = 1
    pages: int = 1
    status_filter: str = ""
    channel_filter: str = ""
    search: str = ""
    channels: list[dict[str, str]] = []
    syncing_id: str = ""
    # Detail dialog
    detail_open: bool = False
    detail: dict[str, str] = {}
    detail_variables: list[dict[str, str]] = []
    detail_preview: dict[str, list[dict[str, str]]] = EMPTY_PREVIEW
    # New (Sandbox) template dialog
    create_open: bool = False
    draft: dict[str, str] = dict(DRAFT_DEFAULTS)
    draft_examples: dict[str, str] = {}
    draft_variables: list[dict[str, str]] = []
    draft_preview: dict[str, list[dict[str, str]]] = EMPTY_PREVIEW
    draft_errors: list[str] = []
    draft_channel: str = ""
    # The preview's sender: the draft's channel's display name and initials (empty: "Your business").
    draft_business: str = ""
    draft_initials: str = ""
    saving: bool = False
    _draft_channel_id: int | None = None

    @rx.var
    def can_manage(self) -> bool:
        """Display only (shows Sync / New template); every handler checks templates:manage itself."""
        return perm.TEMPLATES_MANAGE in perm.capabilities(self.user_role)

    # --- list --------------------------------------------------------------------------------

    def _refresh(self) -> None:
        actor = current_actor()
        with session_scope() as session:
            result = templates_service.templates_page(
                session=session,
                actor=actor,
                status=self.status_filter,
                channel_id=self.channel_filter or None,
                search=self.search,
                page=self.page,
                page_size=PAGE_SIZE,
            )
            if result.rows == [] and result.page > 1 and result.total:  # filtered down: back to the last page
                self.page = result.pages
                result = templates_service.templates_page(
                    session=session,
                    actor=actor,
                    status=self.status_filter,
                    channel_id=self.channel_filter or None,
                    search=self.search,
                    page=self.page,
                    page_size=PAGE_SIZE,
                )
            self.channels = as_text(templates_service.template_channels(session=session, actor=actor))
        self.rows = as_text(result.rows)
        self.total, self.pages, self.page = result.total, result.pages, result.page
        self.loaded = True

    @requires(perm.TEMPLATES_VIEW)
    def load(self):
        self._refresh()

    @requires(perm.TEMPLATES_VIEW)
    def filter_by_status(self, value: str):
        value = "" if value in ("all", "", None) else str(value)
        if value and value not in rules.TEMPLATE_STATUSES:
            return rx.toast.error("Unknown template status.")
        self.status_filter, self.page = value, 1
        self._refresh()

    @requires(perm.TEMPLATES_VIEW)
    def filter_by_channel(self, value: str):
        value = "" if value in ("all", "", None) else str(value)
        if value and value not in {c["id"] for c in self.channels}:
            return rx.toast.error("Unknown channel.")
        self.channel_filter, self.page = value, 1
        self._refresh()

    @requires(perm.TEMPLATES_VIEW)
    def search_templates(self, value: str):
        self.search, self.page = str(value or "")[:200], 1
        self._refresh()

    @requires(perm.TEMPLATES_VIEW)
    def page_forward(self):
        self.page = min(self.page + 1, self.pages)
        self._refresh()

    @requires(perm.TEMPLATES_VIEW)
    def page_back(self):
        self.page = max(1, self.page - 1)
        self._refresh()

    # --- detail ------------------------------------------------------------------------------

    @requires(perm.TEMPLATES_VIEW)
    def open_detail(self, template_id: str):
        try:
            with session_scope() as session:
                detail = templates_service.template_detail(
                    session=session, actor=current_actor(), template_id=template_id
                )
        except TemplateError as exc:
            return rx.toast.error(str(exc))
        components = detail.pop("components")
        variables = detail.pop("variables")
        self.detail = {k: ("yes" if v is True else "" if v is False else str(v)) for k, v in detail.items()}
        self.detail_variables = as_text(variables)
        self.detail_preview = preview_parts(components, {})
        self.detail_open = True

    @requires(perm.TEMPLATES_VIEW)
    def close_detail(self):
        self.detail_open = False

    @requires(perm.TEMPLATES_VIEW)
    def detail_open_changed(self, value: bool):
        if value is not True:  # Escape or a click outside closes; nothing opens the dialog this way
            self.detail_open = False

    # --- sync --------------------------------------------------------------------------------

    @requires(perm.TEMPLATES_MANAGE)
    async def sync_channel(self, channel_id: str):
        actor = current_actor()
        self.syncing_id = str(channel_id)[:20]
        yield
        try:
            result = await asyncio.to_thread(_sync, actor, channel_id)
        except (TemplateError, PermissionDenied) as exc:
            yield rx.toast.error(str(exc), duration=12000)
            return
        finally:
            self.syncing_id = ""
        self._refresh()
        yield rx.toast.success(result.summary(), duration=8000)

    # --- new Sandbox template ----------------------------------------------------------------

    def _recompute_draft(self) -> None:
        draft = rules.draft_from_form(dict(self.draft), dict(self.draft_examples))
        variables = rules.draft_variables(draft)
        keys = {key for key, _, _ in variables}
        # (State dicts are proxies that fail isinstance(Mapping): hand plain dicts to pure code.)
        self.draft_examples = {k: v for k, v in dict(self.draft_examples).items() if k in keys}
        self.draft_variables = [
            {
                "key": key,
                "label": f"{{{{{name}}}}}" + (" (header)" if section == "header" else ""),
                "example": self.draft_examples.get(key, ""),
            }
            for key, section, name in variables
        ]
        components: list[dict] = []
        if draft.header:
            components.append({"type": "HEADER", "format": "TEXT", "text": draft.header})
        components.append({"type": "BODY", "text": draft.body})
        if draft.footer:
            components.append({"type": "FOOTER", "text": draft.footer})
        if draft.buttons:
            components.append(
                {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": b} for b in draft.buttons]}
            )
        self.draft_preview = preview_parts(components if draft.body else [], self.draft_examples, use_examples=False)

    @requires(perm.TEMPLATES_MANAGE)
    def open_new_template(self):
        sandbox = next((c for c in self.channels if c.get("sandbox") == "yes"), None)
        if sandbox is None:
            with session_scope() as session:
                channel = templates_service.sandbox_channel_of(session)
                sandbox = (
                    {"id": str(channel.id), "name": channel.name, **templates_service.preview_sender(channel)}
                    if channel
                    else None
                )
        if sandbox is None:
            return rx.toast.error("There is no Sandbox channel to write templates for.")
        self._draft_channel_id, self.draft_channel = int(sandbox["id"]), sandbox["name"]
        self.draft_business, self.draft_initials = sandbox.get("business", ""), sandbox.get("initials", "")
        self.draft, self.draft_examples, self.draft_errors = dict(DRAFT_DEFAULTS), {}, []
        self._recompute_draft()
        self.create_open = True

    @requires(perm.TEMPLATES_MANAGE)
    def close_new_template(self):
        self.create_open, self.draft_errors = False, []

    @requires(perm.TEMPLATES_MANAGE)
    def create_open_changed(self, value: bool):
        if value is not True:
            self.create_open, self.draft_errors = False, []

    @requires(perm.TEMPLATES_MANAGE)
    def set_draft_field(self, field: str, value: str):
        if field not in DRAFT_FIELDS:
            return rx.toast.error("Unknown template field.")
        text = "" if value is None or isinstance(value, (dict, list)) else str(value)
        self.draft = {**self.draft, field: text[: _FIELD_LIMITS.get(field, 100)]}
        self.draft_errors = []  # they described the draft as it was submitted
        self._recompute_draft()

    @requires(perm.TEMPLATES_MANAGE)
    def set_draft_example(self, key: str, value: str):
        if key not in {v["key"] for v in self.draft_variables}:
            return rx.toast.error("That variable is no longer in the template.")
        text = "" if value is None or isinstance(value, (dict, list)) else str(value)
        self.draft_examples = {**self.draft_examples, key: text[:300]}
        self.draft_errors = []
        self._recompute_draft()

    @requires(perm.TEMPLATES_MANAGE)
    def save_template(self):
        if self._draft_channel_id is None:
            return rx.toast.error('Open "New template" first.')
        draft = rules.draft_from_form(dict(self.draft), dict(self.draft_examples))
        try:
            with session_scope() as session:
                template = templates_service.create_sandbox_template(
                    session=session, actor=current_actor(), channel_id=self._draft_channel_id, draft=draft
                )
                name, language, status = template.name, template.language, template.status
        except TemplateError as exc:
            self.draft_errors = exc.errors
            return
        self.draft_errors, self.create_open = [], False
        self.search, self.status_filter, self.page = "", "", 1
        self._refresh()
        return rx.toast.success(f"Template {name} ({language}) created: {status} on {self.draft_channel}.")
