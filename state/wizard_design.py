"""Wizard step 2, "Design your message": template, variables mapped to fields/columns, live preview, and
"Send a test message" (SPEC S10)."""

from __future__ import annotations

import asyncio

import reflex as rx

from app.db import session_scope
from app.domain import permissions as perm
from app.domain.permissions import Actor
from app.domain.whatsapp_markup import EMPTY_PREVIEW, PreviewParts, preview_parts
from app.services.campaigns import drafts
from app.services.campaigns.draft_view import DRAFT_ERRORS, FIXED_TEXT, DraftView, mapping_from_rows, trial_status
from app.services.campaigns.trial_send import TrialSendError, TrialSendResult, send_trial_message
from state.guard import current_actor, requires
from state.wizard import WizardState

__all__ = ["FIXED_TEXT", "WizardDesignState"]


def _send_trial(actor: Actor, campaign_id: str, number: str) -> TrialSendResult:
    with session_scope() as session:
        return send_trial_message(session=session, actor=actor, campaign_id=campaign_id, to=number)


class WizardDesignState(WizardState):
    template_options: list[dict[str, str]] = []
    unfillable_templates: list[dict[str, str]] = []  # approved but not offered: {"name", "reason"}
    variables: list[dict[str, str]] = []  # {key, label, component, ref, fallback, example}
    field_options: list[str] = []
    preview: PreviewParts = EMPTY_PREVIEW
    preview_business: str = ""  # the channel's WhatsApp display name and its initials, atop the preview
    preview_initials: str = ""
    sample_index: int = 0
    sample_count: int = 0
    sample_address: str = ""
    skipped: int = 0
    trial_number: str = ""
    trial_result: str = ""
    trial_ok: bool = False
    trial_busy: bool = False
    trial_send_id: str = ""
    _samples: list[dict] = []
    _components: list[dict] = []

    def _reset_step(self) -> None:
        self.sample_index = 0
        self.trial_result, self.trial_ok, self.trial_busy, self.trial_send_id = "", False, False, ""

    def _show_view(self, view: DraftView) -> None:
        self.template_options, self.field_options, self.variables = (
            view.template_options,
            view.field_options,
            view.variables,
        )
        self.unfillable_templates = view.unfillable_templates
        self.preview_business, self.preview_initials = view.business_name, view.business_initials
        self._components, self._samples = view.components, view.samples
        self.sample_count, self.skipped = len(view.samples), view.skipped
        self.sample_index = min(self.sample_index, max(0, self.sample_count - 1))
        self._show_sample()

    def _show_sample(self) -> None:
        sample = self._samples[self.sample_index] if self._samples else {"values": {}, "address": ""}
        self.sample_address = sample["address"]
        self.preview = preview_parts(self._components, sample["values"], use_examples=not self._samples)

    async def _save_design(self) -> bool:
        mapping = mapping_from_rows(list(self.variables), self.audience_kind)
        template_id = self.template_id or None
        return await self._run(
            lambda session, actor: drafts.update_design(
                session=session, actor=actor, campaign_id=self._cid(), template_id=template_id, mapping=mapping
            )
        )

    @requires(perm.CAMPAIGNS_EDIT)
    async def set_template(self, value: str):
        if str(value) not in {o["id"] for o in self.template_options} or self._cid() is None:
            return rx.toast.error("Choose an approved template of the channel.")
        self.template_id, self.variables, self.sample_index = str(value), [], 0
        await self._save_design()

    @requires(perm.CAMPAIGNS_EDIT)
    async def set_var_ref(self, key: str, value: str):
        allowed = set(self.field_options) | {FIXED_TEXT}
        if value not in allowed or key not in {v["key"] for v in self.variables}:
            return rx.toast.error("Choose one of the listed fields.")
        self.variables = [{**v, "ref": value} if v["key"] == key else v for v in self.variables]
        await self._save_design()

    @requires(perm.CAMPAIGNS_EDIT)
    async def set_var_fallback(self, key: str, value: str):
        if not isinstance(value, str) or key not in {v["key"] for v in self.variables}:
            return rx.toast.error("That variable is not in the template.")
        self.variables = [{**v, "fallback": value[:1024]} if v["key"] == key else v for v in self.variables]
        await self._save_design()

    @requires(perm.CAMPAIGNS_EDIT)
    def next_sample(self):
        if self.sample_index + 1 < len(self._samples):
            self.sample_index += 1
            self._show_sample()

    @requires(perm.CAMPAIGNS_EDIT)
    def prev_sample(self):
        if self.sample_index > 0:
            self.sample_index -= 1
            self._show_sample()

    # "Send a test message": campaigns:edit like every Design-step handler. Who may design a campaign may
    # check what it looks like on a phone; the test reaches only the number typed here, never the audience,
    # and changes no campaign (app.services.campaigns.trial_send re-checks the capability and throttles per user).

    @requires(perm.CAMPAIGNS_EDIT)
    def set_trial_number(self, value: str):
        self.trial_number = str(value)[:40] if isinstance(value, str) else ""

    @requires(perm.CAMPAIGNS_EDIT)
    async def send_trial(self):
        if self.trial_busy:
            return
        if self.problems:  # the button is disabled for this reason; a crafted event gets the same answer
            self.trial_ok, self.trial_result = False, "The test cannot be sent yet: " + self.problems[0]
            return
        self.trial_busy, self.trial_result = True, ""
        yield
        try:
            result = await asyncio.to_thread(_send_trial, current_actor(), self.campaign_id, self.trial_number)
        except (*DRAFT_ERRORS, TrialSendError) as exc:
            self.trial_busy, self.trial_ok, self.trial_result, self.trial_send_id = False, False, str(exc), ""
            return
        self.trial_busy, self.trial_ok, self.trial_result = False, result.ok, result.message
        self.trial_send_id = str(result.trial_send_id) if result.ok else ""

    @requires(perm.CAMPAIGNS_EDIT)
    def refresh_trial_status(self):
        """Delivered / read, from the status webhooks WhatsApp sent for the test's wamid."""
        if not self.trial_send_id:
            return
        with session_scope() as session:
            status = trial_status(
                session=session, actor=current_actor(), campaign_id=self._cid(), trial_send_id=self.trial_send_id
            )
        if status is None:
            self.trial_send_id = ""
            return
        self.trial_ok, self.trial_result = status
