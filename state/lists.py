"""Lists (SPEC S6): the overview with create / rename / delete, and one list's members.

Basic users see both pages; every changing handler requires audiences:manage, whatever the page shows.
`?return_to=/campaigns/...` on /lists sends the user back there after creating a list (the campaign
wizard's "Create new list"), with `created_list=<id>` added so the wizard can pick it.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

import reflex as rx

from app.db import session_scope
from app.domain import permissions as perm
from app.services.audiences import lists as lists_service
from components import routes
from state.base import AppState
from state.guard import current_actor, requires
from state.rows import as_text

# Only a path inside the campaign pages: never an absolute URL or another site.
_RETURN_TO = re.compile("^" + re.escape(routes.CAMPAIGNS) + r"(/[A-Za-z0-9_\-/]*)?(\?[A-Za-z0-9_\-=&%.]*)?$")


def safe_return_to(value) -> str:
    text = str(value or "").strip()
    return text if _RETURN_TO.match(text) and "//" not in text else ""


def return_url(return_to: str, key: str, value: int) -> str:
    joiner = "&" if "?" in return_to else "?"
    return f"{return_to}{joiner}{urlencode({key: value})}"


class ListsState(AppState):
    rows: list[dict[str, str]] = []
    loaded: bool = False
    return_to: str = ""
    # create / rename dialog
    dialog_open: bool = False
    dialog_list_id: str = ""  # "" when creating
    dialog_name: str = ""
    dialog_description: str = ""
    form_key: str = "0"
    form_error: str = ""
    # delete confirmation
    delete_id: str = ""
    delete_name: str = ""

    def _refresh(self) -> None:
        with session_scope() as session:
            self.rows = as_text(lists_service.list_lists(session=session, actor=current_actor()))
        self.loaded = True

    @requires(perm.AUDIENCES_VIEW)
    def load(self):
        self.return_to = safe_return_to(self.router.page.params.get("return_to", ""))
        self._refresh()

    @requires(perm.AUDIENCES_MANAGE)
    def open_create(self):
        self.dialog_list_id, self.dialog_name, self.dialog_description, self.form_error = "", "", "", ""
        self.form_key = str(int(self.form_key) + 1)
        self.dialog_open = True

    @requires(perm.AUDIENCES_MANAGE)
    def open_rename(self, list_id: str):
        row = next((r for r in self.rows if r["id"] == str(list_id)), None)
        if row is None:
            return rx.toast.error("That list no longer exists.")
        self.dialog_list_id, self.dialog_name, self.dialog_description = row["id"], row["name"], row["description"]
        self.form_error = ""
        self.form_key = str(int(self.form_key) + 1)
        self.dialog_open = True

    @requires(perm.AUDIENCES_MANAGE)
    def close_dialog(self):
        self.dialog_open = False

    @requires(perm.AUDIENCES_MANAGE)
    def save_list(self, form: dict):
        form = form if isinstance(form, dict) else {}
        name, description = str(form.get("name", "")), str(form.get("description", ""))
        try:
            with session_scope() as session:
                if self.dialog_list_id:
                    saved = lists_service.rename_list(
                        session=session,
                        actor=current_actor(),
                        list_id=self.dialog_list_id,
                        name=name,
                        description=description,
                    )
                else:
                    saved = lists_service.create_list(
                        session=session, actor=current_actor(), name=name, description=description
                    )
                saved_id, saved_name = saved.id, saved.name
        except lists_service.ListError as exc:
            self.form_error = str(exc)
            return
        created = not self.dialog_list_id
        self.dialog_open, self.form_error = False, ""
        if created and self.return_to:
            return [
                rx.toast.success(f"List {saved_name} created."),
                rx.redirect(return_url(self.return_to, "created_list", saved_id)),
            ]
        self._refresh()
        return rx.toast.success(f"List {saved_name} {'created' if created else 'saved'}.")

    @requires(perm.AUDIENCES_MANAGE)
    def ask_delete(self, list_id: str):
        row = next((r for r in self.rows if r["id"] == str(list_id)), None)
        if row is None:
            return rx.toast.error("That list no longer exists.")
        self.delete_id, self.delete_name = row["id"], row["name"]

    @requires(perm.AUDIENCES_MANAGE)
    def cancel_delete(self):
        self.delete_id, self.delete_name = "", ""

    @requires(perm.AUDIENCES_MANAGE)
    def confirm_delete(self):
        if not self.delete_id:
            return rx.toast.error("Choose a list to delete.")
        try:
            with session_scope() as session:
                lists_service.delete_list(session=session, actor=current_actor(), list_id=self.delete_id)
        except lists_service.ListError as exc:
            self.delete_id, self.delete_name = "", ""
            return rx.toast.error(str(exc))
        name = self.delete_name
        self.delete_id, self.delete_name = "", ""
        self._refresh()
        return rx.toast.success(f"List {name} deleted; its contacts stay in the base.")


class ListDetailState(AppState):
    """/lists/[list_id]: members with how each was added; managers remove them."""

    current_id: str = ""
    name: str = ""
    description: str = ""
    member_count: int = 0
    rows: list[dict[str, str]] = []
    loaded: bool = False
    missing: bool = False
    search: str = ""
    page: int = 1
    pages: int = 1
    total: int = 0
    selected_ids: list[str] = []

    def _refresh(self) -> None:
        try:
            with session_scope() as session:
                info = lists_service.get_list(session=session, actor=current_actor(), list_id=self.current_id)
                result = lists_service.members_page(
                    session=session, actor=current_actor(), list_id=self.current_id, search=self.search, page=self.page
                )
        except lists_service.ListError:
            self.missing, self.loaded, self.rows = True, True, []
            return
        self.name, self.description, self.member_count = info["name"], info["description"], info["members"]
        self.rows = as_text(result.rows)
        self.total, self.pages, self.page = result.total, result.pages, result.page
        self.missing, self.loaded = False, True

    @requires(perm.AUDIENCES_VIEW)
    def load_detail(self):
        self.current_id = str(self.router.page.params.get("list_id", ""))[:20]
        self.search, self.page, self.selected_ids, self.loaded = "", 1, [], False
        self._refresh()

    @requires(perm.AUDIENCES_VIEW)
    def set_search(self, value: str):
        self.search, self.page = str(value)[:200], 1
        self._refresh()

    @requires(perm.AUDIENCES_VIEW)
    def next_page(self):
        self.page += 1
        self._refresh()

    @requires(perm.AUDIENCES_VIEW)
    def prev_page(self):
        self.page = max(1, self.page - 1)
        self._refresh()

    @requires(perm.AUDIENCES_MANAGE)
    def toggle_member(self, contact_id: str, checked: bool):
        contact_id = str(contact_id)
        if not contact_id.isdigit():
            return
        if checked and contact_id not in self.selected_ids:
            self.selected_ids = [*self.selected_ids, contact_id]
        elif not checked:
            self.selected_ids = [i for i in self.selected_ids if i != contact_id]

    @requires(perm.AUDIENCES_MANAGE)
    def remove_selected(self):
        if not self.current_id or not self.selected_ids:
            return rx.toast.error("Select members to remove first.")
        try:
            with session_scope() as session:
                removed = lists_service.remove_members(
                    session=session,
                    actor=current_actor(),
                    list_id=self.current_id,
                    contact_ids=[int(i) for i in self.selected_ids],
                )
        except (lists_service.ListError, ValueError) as exc:
            return rx.toast.error(str(exc))
        self.selected_ids = []
        self._refresh()
        return rx.toast.success(
            f"Removed {removed} contact{'s' if removed != 1 else ''} from {self.name} (they stay in the base)."
        )
