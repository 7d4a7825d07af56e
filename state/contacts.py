"""Contacts: a server-paged, searchable table."""

from __future__ import annotations

from app.db import session_scope
from app.domain import permissions as perm
from app.services import catalog
from state.base import AppState
from state.guard import current_actor, requires
from state.rows import as_text


class ContactsState(AppState):
    rows: list[dict[str, str]] = []
    total: int = 0
    loaded: bool = False
    search: str = ""
    page: int = 1
    pages: int = 1

    def _refresh(self) -> None:
        with session_scope() as session:
            result = catalog.contacts_page(session=session, actor=current_actor(), search=self.search, page=self.page)
        self.rows = as_text(result.rows)
        self.total, self.pages, self.page = result.total, result.pages, result.page
        self.loaded = True

    @requires(perm.AUDIENCES_VIEW)
    def load(self):
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
