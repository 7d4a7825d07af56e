"""Contacts page: the paged table with filters, row selection → "Add to list", and the contact dialog.

The CSV import dialog has its own state (ContactImportState in state/contact_import.py).
"""

from __future__ import annotations

import secrets

import reflex as rx

from app.db import session_scope
from app.domain import permissions as perm
from app.domain.permissions import PermissionDenied
from app.services.audiences import contact_search, lists
from app.services.audiences import contacts as contacts_service
from app.services.audiences.contacts import CHANNEL_TYPES, CONTACT_FIELDS, ContactError
from state import offload
from state.base import AppState
from state.guard import current_actor, requires
from state.rows import as_text

CHANNEL_FILTERS = ("whatsapp", "instagram", "messenger", "sms")
SUBSCRIPTION_FILTERS = ("subscribed", "unsubscribed")
MAX_SELECTED = 1000


def _new_custom_row(key: str = "", value: str = "") -> dict[str, str]:
    # A random row id keys the inputs, so removing a row never shifts what is typed in the others.
    return {"rid": secrets.token_hex(4), "key": key, "value": value}


class ContactsState(AppState):
    rows: list[dict[str, str]] = []
    total: int = 0
    total_label: str = "0"
    loaded: bool = False
    search: str = ""
    country_filter: str = ""
    channel_filter: str = ""
    subscription_filter: str = ""
    countries: list[str] = []
    page: int = 1
    pages: int = 1
    selected_ids: list[str] = []

    # "Add to list" dialog
    add_open: bool = False
    list_options: list[dict[str, str]] = []
    add_error: str = ""

    # Add / edit contact dialog
    dialog_open: bool = False
    edit_id: str = ""  # "" while adding a new contact
    form_key: str = "0"  # changes at each opening, so the form's inputs start from the values below
    form_values: dict[str, str] = {}
    custom_rows: list[dict[str, str]] = []
    subscriptions: dict[str, str] = {}  # channel -> "subscribed" | "unsubscribed" | "" (no identity yet)
    form_error: str = ""

    @rx.var
    def page_all_selected(self) -> bool:
        return bool(self.rows) and all(r.get("id") in self.selected_ids for r in self.rows)

    async def _refresh(self, fresh: bool = False) -> None:
        """The current page of contacts, searched off the event loop (a search can scan the whole table): one
        at a time per user, the same page answered from a 5-second cache unless `fresh` (after a change)."""
        actor = current_actor()
        query = dict(
            search=self.search,
            country=self.country_filter,
            channel=self.channel_filter,
            subscription=self.subscription_filter,
            page=self.page,
        )

        def page():
            with session_scope() as session:
                return contact_search.contacts_page(session=session, actor=actor, **query)

        if fresh:
            offload.forget(actor)
        result = await offload.run(actor, ("contacts_page", *query.values()), page)
        self.rows = as_text(result.rows)
        self.total, self.pages, self.page = result.total, result.pages, result.page
        capped = result.total > contact_search.CONTACTS_COUNT_CAP
        self.total_label = f"{contact_search.CONTACTS_COUNT_CAP:,}+" if capped else str(result.total)
        self.loaded = True

    @requires(perm.AUDIENCES_VIEW)
    async def load(self):
        actor = current_actor()

        def countries():
            with session_scope() as session:
                return contacts_service.countries_in_use(session=session, actor=actor)

        self.countries = await offload.run(actor, "countries_in_use", countries)
        self.selected_ids = []
        await self._refresh()

    @requires(perm.AUDIENCES_VIEW)
    async def set_search(self, value: str):
        self.search, self.page = str(value)[:200], 1
        await self._refresh()

    @requires(perm.AUDIENCES_VIEW)
    async def set_country_filter(self, value: str):
        value = str(value).strip().upper()
        self.country_filter = value if value in self.countries else ""
        self.page = 1
        await self._refresh()

    @requires(perm.AUDIENCES_VIEW)
    async def set_channel_filter(self, value: str):
        self.channel_filter, self.page = (value if value in CHANNEL_FILTERS else ""), 1
        await self._refresh()

    @requires(perm.AUDIENCES_VIEW)
    async def set_subscription_filter(self, value: str):
        self.subscription_filter, self.page = (value if value in SUBSCRIPTION_FILTERS else ""), 1
        await self._refresh()

    @requires(perm.AUDIENCES_VIEW)
    async def next_page(self):
        self.page += 1
        await self._refresh()

    @requires(perm.AUDIENCES_VIEW)
    async def prev_page(self):
        self.page = max(1, self.page - 1)
        await self._refresh()

    # --- selection and "Add to list" ------------------------------------------------------------

    @requires(perm.AUDIENCES_MANAGE)
    def toggle_selected(self, contact_id: str, checked: bool):
        contact_id = str(contact_id)
        if not contact_id.isdigit():
            return
        if checked and contact_id not in self.selected_ids and len(self.selected_ids) < MAX_SELECTED:
            self.selected_ids = [*self.selected_ids, contact_id]
        elif not checked:
            self.selected_ids = [i for i in self.selected_ids if i != contact_id]

    @requires(perm.AUDIENCES_MANAGE)
    def select_page(self, checked: bool):
        on_page = [r["id"] for r in self.rows]
        if checked:
            self.selected_ids = list(dict.fromkeys([*self.selected_ids, *on_page]))[:MAX_SELECTED]
        else:
            self.selected_ids = [i for i in self.selected_ids if i not in on_page]

    @requires(perm.AUDIENCES_MANAGE)
    def clear_selection(self):
        self.selected_ids = []

    @requires(perm.AUDIENCES_MANAGE)
    def open_add_to_list(self):
        if not self.selected_ids:
            return rx.toast.error("Select contacts in the table first.")
        with session_scope() as session:
            self.list_options = [
                {"id": str(r["id"]), "name": r["name"]}
                for r in lists.list_lists(session=session, actor=current_actor())
            ]
        self.add_error = ""
        self.add_open = True

    @requires(perm.AUDIENCES_MANAGE)
    def close_add_to_list(self):
        self.add_open = False

    @requires(perm.AUDIENCES_MANAGE)
    def add_selected_to_list(self, form: dict):
        form = form if isinstance(form, dict) else {}
        list_id, new_name = str(form.get("list_id", "")).strip(), str(form.get("new_list_name", "")).strip()
        if not self.selected_ids:
            self.add_error = "Select contacts in the table first."
            return
        try:
            with session_scope() as session:
                if new_name:
                    created = lists.create_list(session=session, actor=current_actor(), name=new_name)
                    target = {"id": created.id, "name": created.name}
                elif list_id:
                    target = lists.get_list(session=session, actor=current_actor(), list_id=list_id)
                else:
                    raise lists.ListError("Choose a list, or name a new one.")
                added = lists.add_members(
                    session=session,
                    actor=current_actor(),
                    list_id=target["id"],
                    contact_ids=[int(i) for i in self.selected_ids],
                    source="manual",
                )
                name = target["name"]
        except (lists.ListError, ValueError) as exc:
            self.add_error = str(exc)
            return
        count = len(self.selected_ids)
        self.add_open, self.selected_ids = False, []
        already = count - added
        return rx.toast.success(
            f"Added {added} contact{'s' if added != 1 else ''} to {name}"
            + (f" ({already} already there)." if already else ".")
        )

    # --- add / edit contact -----------------------------------------------------------------------

    def _open_form(self, values: dict[str, str], custom: dict, subscriptions: dict[str, str]) -> None:
        self.form_values = values
        self.custom_rows = [_new_custom_row(k, str(v)) for k, v in custom.items()] or [_new_custom_row()]
        self.subscriptions = subscriptions
        self.form_error = ""
        self.form_key = secrets.token_hex(4)
        self.dialog_open = True

    @requires(perm.AUDIENCES_MANAGE)
    def open_new_contact(self):
        self.edit_id = ""
        self._open_form(
            {**dict.fromkeys(CONTACT_FIELDS, ""), **dict.fromkeys(CHANNEL_TYPES, "")},
            {},
            dict.fromkeys(CHANNEL_TYPES, ""),
        )

    @requires(perm.AUDIENCES_MANAGE)
    def open_edit_contact(self, contact_id: str):
        try:
            with session_scope() as session:
                got = contacts_service.get_contact(session=session, actor=current_actor(), contact_id=int(contact_id))
        except (ContactError, ValueError):
            return rx.toast.error("This contact no longer exists.")
        self.edit_id = str(got["id"])
        subs = {t: ("" if s is None else "subscribed" if s else "unsubscribed") for t, s in got["subscribed"].items()}
        self._open_form({**got["fields"], **got["identities"]}, got["custom_fields"], subs)

    @requires(perm.AUDIENCES_MANAGE)
    def close_contact_dialog(self):
        self.dialog_open = False

    @requires(perm.AUDIENCES_MANAGE)
    def add_custom_row(self):
        if len(self.custom_rows) < contacts_service.MAX_CUSTOM_FIELDS:
            self.custom_rows = [*self.custom_rows, _new_custom_row()]

    @requires(perm.AUDIENCES_MANAGE)
    def remove_custom_row(self, rid: str):
        self.custom_rows = [r for r in self.custom_rows if r["rid"] != str(rid)]

    @requires(perm.AUDIENCES_MANAGE)
    async def save_contact(self, form: dict):
        form = form if isinstance(form, dict) else {}
        fields = {name: str(form.get(name, "")) for name in CONTACT_FIELDS}
        identities = {t: str(form.get(f"identity_{t}", "")) for t in CHANNEL_TYPES}
        custom = {}
        for row in self.custom_rows:
            key = str(form.get(f"custom_key_{row['rid']}", "")).strip()
            value = str(form.get(f"custom_value_{row['rid']}", "")).strip()
            if key or value:
                if not key:
                    self.form_error = f"Give the custom field with the value {value[:30]!r} a name."
                    return
                custom[key] = value
        try:
            with session_scope() as session:
                if self.edit_id:
                    contact = contacts_service.update_contact(
                        session=session,
                        actor=current_actor(),
                        contact_id=int(self.edit_id),
                        fields=fields,
                        custom_fields=custom,
                        identities=identities,
                    )
                else:
                    contact = contacts_service.create_contact(
                        session=session,
                        actor=current_actor(),
                        fields=fields,
                        custom_fields=custom,
                        identities=identities,
                    )
                name = contacts_service.display_name(contact)
        except (ContactError, ValueError) as exc:
            self.form_error = str(exc)
            return
        created = not self.edit_id
        self.dialog_open, self.form_error = False, ""
        await self._refresh(fresh=True)
        return rx.toast.success(f"{name} {'added' if created else 'saved'}.")

    @requires(perm.AUDIENCES_MANAGE)
    async def set_subscription(self, channel_type: str, subscribed: bool):
        """Subscribe or unsubscribe the contact open in the dialog on one channel (audit-logged)."""
        if not self.edit_id:
            return rx.toast.error("Save the contact first.")
        try:
            with session_scope() as session:
                contacts_service.set_subscription(
                    session=session,
                    actor=current_actor(),
                    contact_id=int(self.edit_id),
                    channel_type=str(channel_type),
                    subscribed=bool(subscribed),
                )
        except (ContactError, ValueError, PermissionDenied) as exc:
            return rx.toast.error(str(exc))
        self.subscriptions = {**self.subscriptions, str(channel_type): "subscribed" if subscribed else "unsubscribed"}
        await self._refresh(fresh=True)
        label = contacts_service.CHANNEL_LABELS.get(str(channel_type), str(channel_type))
        return rx.toast.success(f"{'Subscribed' if subscribed else 'Unsubscribed'} on {label}.")
