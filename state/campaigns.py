"""All Campaigns (SPEC S3, S12, S16): the list, searchable, filterable, paged on the server, live while
anything sends.

Live status: `load` starts `watch_live`, a background task that re-reads the page (the campaigns'
denormalised counters, cheap) every LIVE_INTERVAL_S while some campaign is sending, scheduled or still
receiving statuses, and stops when nothing is, when the tab moves to another page or closes, when the
session ends, or when a newer page load started another watcher (a generation number).
"""

from __future__ import annotations

import asyncio

import reflex as rx

from app.db import session_scope
from app.domain import permissions as perm
from app.services import auth, campaign_results, catalog
from state.base import AppState
from state.guard import current_actor, requires
from state.rows import as_text

LIVE_INTERVAL_S = 1.0


async def tab_is_open(token: str) -> bool:
    """Whether the browser tab behind this state token is still connected (best effort: True if unsure)."""
    try:
        from reflex.utils.prerequisites import get_app

        return await get_app().app.event_namespace._token_manager.is_token_connected(token)
    except Exception:  # an API change must not stop live updates; the route and idle checks still end it
        return True


def read_campaigns_page(secret: str, search: str, status: str, page: int):
    """(page, live) for the user behind `secret`, or None when the session ended or lost the right."""
    with session_scope() as session:
        user = auth.resolve_session(session=session, secret=secret)
        if user is None or not perm.can(user.role, perm.CAMPAIGNS_VIEW):
            return None
        result = catalog.campaigns_page(session=session, actor=user, search=search, status=status, page=page)
        return result, campaign_results.anything_live(session=session, actor=user)


class CampaignsState(AppState):
    rows: list[dict[str, str]] = []
    total: int = 0
    any_campaign: bool = False
    loaded: bool = False
    live: bool = False  # something is sending: the page refreshes itself
    search: str = ""
    status_filter: str = ""
    page: int = 1
    pages: int = 1
    _live_generation: int = 0

    def _show(self, result, live: bool) -> None:
        self.rows = as_text(result.rows)
        self.total, self.pages, self.page = result.total, result.pages, result.page
        self.live = live
        self.loaded = True

    def _refresh(self) -> None:
        with session_scope() as session:
            actor = current_actor()
            result = catalog.campaigns_page(session=session, actor=actor, search=self.search,
                                            status=self.status_filter, page=self.page)
            if not self.any_campaign:
                self.any_campaign = bool(result.total) or bool(
                    catalog.campaigns_page(session=session, actor=actor, page_size=1).total)
            live = campaign_results.anything_live(session=session, actor=actor)
        self._show(result, live)

    @requires(perm.CAMPAIGNS_VIEW)
    def load(self):
        self.any_campaign = False
        self._refresh()
        if self.live:
            return CampaignsState.watch_live

    @rx.event(background=True)
    @requires(perm.CAMPAIGNS_VIEW)
    async def watch_live(self):
        async with self:
            self._live_generation += 1
            generation = self._live_generation
            route = self.router.url.path
            token = self.router.session.client_token
        while True:
            await asyncio.sleep(LIVE_INTERVAL_S)
            async with self:
                if self._live_generation != generation or self.router.url.path != route:
                    return  # a newer watcher took over, or the tab left this page
                secret, search, status, page = self.session_secret, self.search, self.status_filter, self.page
            if not await tab_is_open(token):
                return
            # Database work outside the lock, in a thread: the tab stays responsive meanwhile.
            read = await asyncio.to_thread(read_campaigns_page, secret, search, status, page)
            async with self:
                if read is None:
                    self.live = False
                    return  # the session ended: the next click meets the guard and the login page
                if self._live_generation != generation:
                    return
                if (self.search, self.status_filter, self.page) == (search, status, page):
                    self._show(*read)
                if not self.live:
                    return

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
