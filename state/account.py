"""The signed-in user's own account: the "Change password" dialog of the side menu (issue 13 item 8)."""

from __future__ import annotations

import asyncio

import reflex as rx

from app.db import session_scope
from app.domain import permissions as perm
from app.domain.permissions import Actor
from app.services.accounts import passwords
from state.base import AppState
from state.guard import current_actor, requires


def _change(actor: Actor, form: dict, secret: str, ip: str) -> int:
    with session_scope() as session:
        return passwords.change_own_password(
            session=session,
            actor=actor,
            current_password=str(form.get("current_password", ""))[:300],
            new_password=str(form.get("new_password", ""))[:300],
            confirm_password=str(form.get("confirm_password", ""))[:300],
            session_secret=secret,
            ip=ip,
        )


class AccountState(AppState):
    password_dialog_open: bool = False
    password_error: str = ""

    @requires(perm.ACCOUNT_OWN)
    def open_change_password(self):
        self.password_error = ""
        self.password_dialog_open = True

    @requires(perm.ACCOUNT_OWN)
    def close_change_password(self):
        self.password_error = ""
        self.password_dialog_open = False

    @requires(perm.ACCOUNT_OWN)
    async def change_password(self, form: dict):
        # Argon2 twice (check the current password, hash the new one): off the event loop.
        try:
            ended = await asyncio.to_thread(_change, current_actor(), form, self._bound_secret(), self._client_ip())
        except passwords.PasswordError as exc:
            self.password_error = str(exc)
            return
        self.password_error = ""
        self.password_dialog_open = False
        others = f" {ended} other session(s) ended." if ended else ""
        return rx.toast.success(f"Password changed.{others}")
