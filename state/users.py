"""Users page (admin): create users, change roles, deactivate (ends their sessions at once)."""

from __future__ import annotations

import asyncio

import reflex as rx

from app.db import session_scope
from app.domain import permissions as perm
from app.services.accounts import passwords
from app.services.accounts import users as users_service
from state.base import AppState
from state.guard import current_actor, requires


class UsersState(AppState):
    rows: list[dict[str, str]] = []
    loaded: bool = False
    form_error: str = ""
    dialog_open: bool = False
    # A generated password is shown once to the admin who created the account, then forgotten.
    created_password: str = ""
    created_email: str = ""
    # Reset password: the row asked about, then the new password, shown once until the dialog closes.
    reset_user_id: str = ""
    reset_email: str = ""
    reset_password_value: str = ""

    def _refresh(self) -> None:
        with session_scope() as session:
            users = users_service.list_users(session=session, actor=current_actor())
        me = current_actor().id
        self.rows = [
            {
                "id": str(u.id),
                "email": u.email,
                "name": u.name,
                "role": u.role,
                "role_label": perm.ROLE_LABELS.get(u.role, u.role),
                "active": "yes" if u.is_active else "",
                "me": "yes" if u.id == me else "",
                "last_login": u.last_login_at.strftime("%Y-%m-%d %H:%M UTC") if u.last_login_at else "never",
            }
            for u in users
        ]
        self.loaded = True

    @requires(perm.USERS_MANAGE)
    def load(self):
        self._refresh()

    @requires(perm.USERS_MANAGE)
    def open_create(self):
        self.form_error, self.created_password, self.created_email = "", "", ""
        self.dialog_open = True

    @requires(perm.USERS_MANAGE)
    def close_create(self):
        self.dialog_open = False
        self.created_password = ""

    @requires(perm.USERS_MANAGE)
    def create_user(self, form: dict):
        password = str(form.get("password", "")) or None
        try:
            with session_scope() as session:
                user, generated = users_service.create_user(
                    session=session,
                    actor=current_actor(),
                    email=str(form.get("email", "")),
                    role=str(form.get("role", "")),
                    name=str(form.get("name", "")),
                    password=password,
                )
        except users_service.UserError as exc:
            self.form_error = str(exc)
            return
        self.form_error = ""
        self.created_email = user.email
        self.created_password = generated or ""
        if not generated:
            self.dialog_open = False
        self._refresh()
        return rx.toast.success(f"User {user.email} created.")

    @requires(perm.USERS_MANAGE)
    def change_role(self, user_id: str, role: str):
        try:
            with session_scope() as session:
                user = users_service.change_role(
                    session=session, actor=current_actor(), user_id=int(user_id), role=role
                )
        except (users_service.UserError, ValueError) as exc:
            return rx.toast.error(str(exc))
        self._refresh()
        return rx.toast.success(f"{user.email} is now {perm.ROLE_LABELS[user.role]}.")

    @requires(perm.USERS_MANAGE)
    def ask_reset_password(self, user_id: str):
        row = next((r for r in self.rows if r["id"] == str(user_id)), None)
        if row is None:
            return rx.toast.error("That user no longer exists.")
        self.reset_user_id, self.reset_email, self.reset_password_value = row["id"], row["email"], ""

    @requires(perm.USERS_MANAGE)
    def close_reset_password(self):
        self.reset_user_id = self.reset_email = self.reset_password_value = ""

    @requires(perm.USERS_MANAGE)
    async def reset_password(self):
        if not self.reset_user_id:
            return rx.toast.error("Choose a user first.")

        def reset(actor, user_id: str) -> tuple[str, str]:
            with session_scope() as session:
                user, generated = passwords.reset_password(session=session, actor=actor, user_id=user_id)
                return user.email, generated

        try:  # Argon2 hashing: off the event loop
            email, generated = await asyncio.to_thread(reset, current_actor(), self.reset_user_id)
        except passwords.PasswordError as exc:
            self.reset_user_id = self.reset_email = ""
            return rx.toast.error(str(exc))
        self.reset_email, self.reset_password_value = email, generated

    @requires(perm.USERS_MANAGE)
    def set_active(self, user_id: str, active: bool):
        try:
            with session_scope() as session:
                user = users_service.set_active(
                    session=session, actor=current_actor(), user_id=int(user_id), active=bool(active)
                )
        except (users_service.UserError, ValueError) as exc:
            return rx.toast.error(str(exc))
        self._refresh()
        outcome = "reactivated" if user.is_active else "deactivated; their sessions ended"
        return rx.toast.success(f"{user.email} {outcome}.")
