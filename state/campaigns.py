"""All Campaigns (SPEC S3, S12, S16): the list, searchable, filterable, paged on the server."""

from __future__ import annotations

from app.db import session_scope
from app.domain import permissions as perm
from app.services import catalog
from state.base import AppState
from state.guard import current_actor, requires
from state.rows import as_text


class CampaignsState(AppState):
    rows: list[dict[str, str]] = []
    total: int = 0
    any_campaign: bool = False
    loaded: bool = False
    search: str = ""
    status_filter: str = ""
    page: int = 1
    pages: int = 1

    def _refresh(self) -> None:
        with session_scope() as session:
            result = catalog.campaigns_page(session=session, actor=current_actor(), search=self.search,
                                            status=self.status_filter, page=self.page)
            if not self.any_campaign:
                self.any_campaign = bool(result.total) or bool(
                    catalog.campaigns_page(session=session, actor=current_actor(), page_size=1).total)
        self.rows = as_text(result.rows)
        self.total, self.pages, self.page = result.total, result.pages, result.page
        self.loaded = True

    @requires(perm.CAMPAIGNS_VIEW)
    def load(self):
        self.any_campaign = False
        self._refresh()

    @requires(perm.CAMPAIGNS_VIEW)
    def set_search(self, value: str):
        self.search, self.page = str(value)[:200], 1
        self._refresh()

    @requires(perm.CAMPAIGNS_VIEW)
    def set_status_filter(self, value: str):
        self.status_filter, self.page = ("" if value == "all" else str(value)[:16]), 1
        self._refresh()

    @requires(perm.CAMPAIGNS_VIEW)
    def next_page(self):
        self.page += 1
        self._refresh()

    @requires(perm.CAMPAIGNS_VIEW)
    def prev_page(self):
        self.page = max(1, self.page - 1)
        self._refresh()
