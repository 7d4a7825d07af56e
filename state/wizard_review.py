"""Wizard step 3, "Review and send": every detail with "Edit", then "Send" or "Schedule" (SPEC S11)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import reflex as rx

from app.db import session_scope
from app.domain import permissions as perm
from app.domain.permissions import Actor
from app.domain.time_zones import TIMEZONES, is_known_zone
from app.services.campaigns.draft_view import DRAFT_ERRORS, DraftView
from app.services.sending.lifecycle import SendingError, schedule_campaign, start_campaign, to_utc
from components import routes
from state.guard import current_actor, requires
from state.wizard import WizardState

__all__ = ["TIMEZONES", "WizardReviewState"]


def _freeze_and_start(actor: Actor, campaign_id: int) -> str:
    with session_scope() as session:
        return start_campaign(session=session, actor=actor, campaign_id=campaign_id).status


class WizardReviewState(WizardState):
    review: dict[str, str] = {}
    mapping_rows: list[dict[str, str]] = []
    send_open: bool = False
    schedule_open: bool = False
    schedule_date: str = ""
    schedule_time: str = ""
    schedule_note: str = ""
    busy: bool = False

    def _reset_step(self) -> None:
        self.send_open = self.schedule_open = self.busy = False

    def _show_view(self, view: DraftView) -> None:
        self.review, self.mapping_rows = view.review, view.mapping_rows

    @requires(perm.CAMPAIGNS_SEND)
    def open_send(self):
        if self.problems or self._cid() is None:
            return rx.toast.error(self.problems[0] if self.problems else "Finish the campaign first.")
        self.send_open = True

    @requires(perm.CAMPAIGNS_SEND)
    def close_dialogs(self):
        self.send_open = self.schedule_open = False

    @requires(perm.CAMPAIGNS_SEND)
    async def confirm_send(self):
        if self.busy or self._cid() is None:
            return
        self.busy = True
        yield
        try:
            await asyncio.to_thread(_freeze_and_start, current_actor(), self._cid())
        except DRAFT_ERRORS as exc:
            self.busy, self.send_open, self.error = False, False, str(exc)
            yield rx.toast.error(str(exc))
            return
        self.busy = self.send_open = False
        yield [rx.toast.success(f"“{self.name}” is sending."), rx.redirect(routes.CAMPAIGNS)]

    @requires(perm.CAMPAIGNS_SEND)
    def open_schedule(self):
        if self.problems or self._cid() is None:
            return rx.toast.error(self.problems[0] if self.problems else "Finish the campaign first.")
        self.schedule_open, self.schedule_note = True, ""
        self._note()

    def _note(self) -> None:
        if not (self.schedule_date and self.schedule_time):
            self.schedule_note = ""
            return
        try:
            when = to_utc(self.timezone, f"{self.schedule_date} {self.schedule_time}")
        except SendingError as exc:
            self.schedule_note = str(exc)
            return
        past = " — this time is in the past" if when <= datetime.now(UTC) else ""
        yours = ""
        if self.browser_tz and self.browser_tz not in (self.timezone, "UTC"):
            yours = f" ({when.astimezone(ZoneInfo(self.browser_tz)):%Y-%m-%d %H:%M} {self.browser_tz}, your time zone)"
        self.schedule_note = f"{when:%Y-%m-%d %H:%M} UTC{yours}{past}"

    @requires(perm.CAMPAIGNS_SEND)
    def set_timezone(self, value: str):
        if not is_known_zone(value):
            return rx.toast.error("Choose a time zone from the list.")
        self.timezone = value
        self._note()

    @requires(perm.CAMPAIGNS_SEND)
    def set_schedule_date(self, value: str):
        self.schedule_date = str(value)[:10] if isinstance(value, str) else ""
        self._note()

    @requires(perm.CAMPAIGNS_SEND)
    def set_schedule_time(self, value: str):
        self.schedule_time = str(value)[:5] if isinstance(value, str) else ""
        self._note()

    @requires(perm.CAMPAIGNS_SEND)
    def confirm_schedule(self):
        if self._cid() is None:
            return rx.toast.error("Finish the campaign first.")
        if not (self.schedule_date and self.schedule_time):
            return rx.toast.error("Choose the date and the time.")
        try:
            with session_scope() as session:
                schedule_campaign(
                    session=session,
                    actor=current_actor(),
                    campaign_id=self._cid(),
                    tz=self.timezone,
                    local_dt=f"{self.schedule_date} {self.schedule_time}",
                )
        except DRAFT_ERRORS as exc:
            return rx.toast.error(str(exc))
        self.schedule_open = False
        return [rx.toast.success(f"“{self.name}” is scheduled."), rx.redirect(routes.CAMPAIGNS)]
