"""Audit log page (admins): who did what, including what they were refused, newest first, paged on the
server (the log only grows)."""

from __future__ import annotations

from app.db import session_scope
from app.domain import permissions as perm
from app.services.accounts import audit
from state.base import AppState
from state.guard import current_actor, requires


class AuditState(AppState):
    rows: list[dict[str, str]] = []
    loaded: bool = False
    total: int = 0
    page: int = 1
    pages: int = 1

    def _refresh(self) -> None:
        with session_scope() as session:
            result = audit.audit_page(session=session, actor=current_actor(), page=self.page)
        self.rows, self.total, self.page, self.pages = result.rows, result.total, result.page, result.pages
        self.loaded = True

    @requires(perm.AUDIT_VIEW)
    def load(self):
        self.page = 1
        self._refresh()

    @requires(perm.AUDIT_VIEW)
    def page_forward(self):
        self.page = min(self.page + 1, self.pages)
        self._refresh()

    @requires(perm.AUDIT_VIEW)
    def page_back(self):
        self.page = max(1, self.page - 1)
        self._refresh()
