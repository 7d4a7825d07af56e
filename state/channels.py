"""Channels page: everyone sees the numbers (no secrets); admins connect, edit, test and disconnect.

Secrets are write-only. They arrive once in the submitted form's payload, go straight to the service,
and are never kept in a var (public or private): the edit form starts empty and shows only whether each
secret is set. The one exception the admin needs, a verify token Hubcast generated, is written into a
read-only input with `rx.set_value` (a one-off browser event, not state), so it is not in any var, not
in a later delta, and gone from the page after a reload.

Network calls (the connection test) run on a worker thread, so a slow Meta never blocks other users.
"""

from __future__ import annotations

import asyncio
from typing import Any

import reflex as rx

from app.db import session_scope
from app.domain import permissions as perm
from app.domain.permissions import Actor, PermissionDenied
from app.services.channels import channels as channels_service
from app.services.channels.channels import ChannelError
from state.base import AppState
from state.guard import current_actor, requires
from state.rows import as_text

VERIFY_TOKEN_INPUT = "webhook-verify-token"


def _save_and_test(actor: Actor, edit_id: int | None, form: dict) -> dict[str, Any]:
    """Save (one transaction), then test the connection when it is new or its credentials changed."""
    with session_scope() as session:
        if edit_id is None:
            saved = channels_service.connect_channel(session=session, actor=actor, form=form)
        else:
            saved = channels_service.update_channel(session=session, actor=actor, channel_id=edit_id, form=form)
        outcome = {
            "id": saved.channel.id,
            "name": saved.channel.name,
            "generated": saved.generated_verify_token,
            "changed": list(saved.changed),
            "test": None,
        }
        needs_test = edit_id is None or saved.connection_changed
    if needs_test:
        with session_scope() as session:
            outcome["test"] = channels_service.test_connection(session=session, actor=actor, channel_id=outcome["id"])
    return outcome


def _test(actor: Actor, channel_id: Any) -> channels_service.ConnectionResult:
    with session_scope() as session:
        return channels_service.test_connection(session=session, actor=actor, channel_id=channel_id)


def _test_toast(name: str, result: channels_service.ConnectionResult):
    if result.ok:
        return rx.toast.success(f"{name} is connected ({result.message}).")
    return rx.toast.error(f"{name}: connection failed. {result.message}", duration=12000)


class ChannelsState(AppState):
    rows: list[dict[str, str]] = []
    loaded: bool = False
    webhook_url: str = ""
    # The connect / edit dialog. `form_values` holds no secret, only which ones are set.
    form_open: bool = False
    form_mode: str = "connect"  # connect | edit
    form_values: dict[str, str] = {}
    form_error: str = ""
    saving: bool = False
    # Shown after a connect: where to point Meta's webhook (the verify token itself is not state).
    setup_channel: str = ""
    setup_token_generated: bool = False
    testing_id: str = ""
    confirm_open: bool = False
    confirm_name: str = ""
    _edit_id: int | None = None
    _confirm_id: int | None = None

    def _refresh(self) -> None:
        actor = current_actor()
        with session_scope() as session:
            self.rows = as_text(channels_service.channels_overview(session=session, actor=actor))
        self.webhook_url = channels_service.webhook_url() if perm.can(actor.role, perm.CHANNELS_MANAGE) else ""
        self.loaded = True

    @requires(perm.CHANNELS_VIEW)
    def load(self):
        self._refresh()

    # --- connect / edit ------------------------------------------------------------------------

    @requires(perm.CHANNELS_MANAGE)
    def open_connect(self):
        self._edit_id = None
        self.form_mode, self.form_error, self.form_open = "connect", "", True
        self.form_values = {
            "api_base_url": channels_service.DEFAULT_API_BASE_URL,
            "api_version": channels_service.DEFAULT_API_VERSION,
            "messages_per_second": str(channels_service.DEFAULT_MPS),
        }

    @requires(perm.CHANNELS_MANAGE)
    def open_edit(self, channel_id: str):
        try:
            with session_scope() as session:
                values = channels_service.channel_for_edit(
                    session=session, actor=current_actor(), channel_id=channel_id
                )
        except ChannelError as exc:
            return rx.toast.error(str(exc))
        self._edit_id = int(values["id"])
        self.form_mode, self.form_error, self.form_values, self.form_open = "edit", "", values, True

    @requires(perm.CHANNELS_MANAGE)
    def close_form(self):
        self.form_open, self.form_error, self._edit_id = False, "", None

    @requires(perm.CHANNELS_MANAGE)
    def form_open_changed(self, value: bool):
        if value is not True:  # Escape or a click outside closes the dialog
            self.form_open, self.form_error, self._edit_id = False, "", None

    @requires(perm.CHANNELS_MANAGE)
    async def save_channel(self, form: dict):
        actor, edit_id = current_actor(), self._edit_id
        self.saving, self.form_error = True, ""
        yield
        try:
            outcome = await asyncio.to_thread(_save_and_test, actor, edit_id, form if isinstance(form, dict) else {})
        except (ChannelError, PermissionDenied) as exc:
            self.form_error = str(exc)
            return
        finally:
            self.saving = False
        self.form_open, self._edit_id = False, None
        self._refresh()
        events: list = []
        if edit_id is None:
            self.setup_channel = outcome["name"]
            self.setup_token_generated = bool(outcome["generated"])
            if outcome["generated"]:
                events.append(rx.set_value(VERIFY_TOKEN_INPUT, outcome["generated"]))
            events.append(rx.toast.success(f"{outcome['name']} saved."))
        elif outcome["changed"]:
            events.append(rx.toast.success(f"{outcome['name']} updated."))
        else:
            events.append(rx.toast.info("Nothing changed."))
        if outcome["test"] is not None:
            events.append(_test_toast(outcome["name"], outcome["test"]))
        for event in events:
            yield event

    @requires(perm.CHANNELS_MANAGE)
    def hide_setup(self):
        self.setup_channel, self.setup_token_generated = "", False
        return rx.set_value(VERIFY_TOKEN_INPUT, "")

    # --- test, disconnect ----------------------------------------------------------------------

    @requires(perm.CHANNELS_MANAGE)
    async def check_connection(self, channel_id: str):
        actor = current_actor()
        self.testing_id = str(channel_id)[:20]
        yield
        try:
            result = await asyncio.to_thread(_test, actor, channel_id)
        except (ChannelError, PermissionDenied) as exc:
            yield rx.toast.error(str(exc))
            return
        finally:
            self.testing_id = ""
        name = next((r["name"] for r in self.rows if r.get("id") == str(channel_id)), "The channel")
        self._refresh()
        yield _test_toast(name, result)

    @requires(perm.CHANNELS_MANAGE)
    def ask_disconnect(self, channel_id: str):
        row = next((r for r in self.rows if r.get("id") == str(channel_id)), None)
        if row is None:
            return rx.toast.error("Unknown channel.")
        if row.get("sandbox") == "yes":
            return rx.toast.error("The Sandbox simulator is always available and cannot be disconnected.")
        self._confirm_id, self.confirm_name, self.confirm_open = int(row["id"]), row["name"], True

    @requires(perm.CHANNELS_MANAGE)
    def cancel_disconnect(self):
        self._confirm_id, self.confirm_name, self.confirm_open = None, "", False

    @requires(perm.CHANNELS_MANAGE)
    def confirm_disconnect(self):
        channel_id, self.confirm_open = self._confirm_id, False
        self._confirm_id = None
        if channel_id is None:
            return rx.toast.error("Choose a channel to disconnect first.")
        try:
            with session_scope() as session:
                result = channels_service.disconnect_channel(
                    session=session, actor=current_actor(), channel_id=channel_id
                )
                name = result.channel.name
        except ChannelError as exc:
            return rx.toast.error(str(exc))
        self._refresh()
        note = (
            (
                f" {result.active_campaigns} scheduled, sending or paused campaign(s) use it and cannot send "
                "until it is reconnected."
            )
            if result.active_campaigns
            else ""
        )
        return rx.toast.success(f"{name} disconnected.{note}")
