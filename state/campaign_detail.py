"""One campaign's results (/campaigns/<id>): analytics cards and the per-recipient table, paged and
filtered on the server, live while the campaign sends or receives statuses (same pattern as the list:
a background task polling cheap counters, see state/campaigns.py)."""

from __future__ import annotations

import asyncio
import re
import time

import reflex as rx

from app.db import session_scope
from app.domain import permissions as perm
from app.http_api import campaign_export_url
from app.services.accounts import auth
from app.services.campaigns import insight as campaign_insight
from app.services.campaigns import replies as replies_service
from app.services.campaigns import results as campaign_results
from app.services.campaigns import send_again
from components import routes
from state.base import AppState
from state.campaigns import LIVE_INTERVAL_S, tab_is_open
from state.guard import current_actor, requires
from state.rows import as_text

_ID_IN_PATH = re.compile(re.escape(routes.CAMPAIGNS) + r"/(\d{1,12})/?$")
STATUS_OPTIONS = ["all", *campaign_results.RECIPIENT_FILTERS]
SEND_AGAIN_OPTIONS = list(send_again.KINDS)
# While live, the funnel and the per-second timeline refresh every tick; the groupings over the whole
# campaign (failures, countries) read all its rows (about 0.1 s at 100,000 once migration 0015's index
# is there, more on a loaded machine: bench/campaign_insight.py), so they refresh at most every FULL_INSIGHT_EVERY_S per campaign, and wait at
# least ten times as long as the last one took (the web process stays mostly free).
FULL_INSIGHT_EVERY_S = 2.0
_full_insight_next: dict[int, float] = {}


def _insight(session, user, campaign_id: int, force: bool = False, replies_page: int = 1) -> dict:
    started = time.monotonic()
    everything = force or started >= _full_insight_next.get(campaign_id, 0.0)
    data = campaign_insight.insight(
        session=session, actor=user, campaign_id=campaign_id, everything=everything, replies_page=replies_page
    )
    if everything:
        took = time.monotonic() - started
        _full_insight_next[campaign_id] = started + max(FULL_INSIGHT_EVERY_S, 10 * took)
    return data


def read_campaign(secret: str, campaign_id: int, status: str, search: str, page: int, replies_page: int = 1):
    """(summary, recipients page, insight) for the user behind `secret`; None when the session ended or lost
    the right."""
    with session_scope() as session:
        user = auth.resolve_session(session=session, secret=secret)
        if user is None or not perm.can(user.role, perm.CAMPAIGNS_VIEW):
            return None
        summary = campaign_results.campaign_summary(session=session, actor=user, campaign_id=campaign_id)
        rows = campaign_results.recipients_page(
            session=session, actor=user, campaign_id=campaign_id, status=status, search=search, page=page
        )
        return summary, rows, _insight(session, user, campaign_id, replies_page=replies_page)


class CampaignDetailState(AppState):
    campaign: dict[str, str] = {}
    rows: list[dict[str, str]] = []
    total: int = 0
    page: int = 1
    pages: int = 1
    search: str = ""
    status_filter: str = ""
    loaded: bool = False
    error: str = ""
    live: bool = False
    export_url: str = ""
    # Insight (issue 15): charts read numbers, tables read text.
    funnel: list[dict[str, str | int]] = []
    timeline: list[dict[str, str | int]] = []
    timeline_unit: str = "minute"
    failures: list[dict[str, str]] = []
    countries: list[dict[str, str]] = []
    replies: list[dict[str, str]] = []
    # Replies are paged on the server, newest first (replies.PAGE_SIZE a page).
    replies_page: int = 1
    replies_pages: int = 1
    replies_total: int = 0
    replies_range: str = ""
    buttons: list[dict[str, str | int]] = []
    again_kind: str = "failed"
    again_hours: str = "24"
    again_button: str = ""
    again_count: str = ""
    _campaign_id: int = 0
    _live_generation: int = 0

    def _show_insight(self, data: dict) -> None:
        self.funnel = data["funnel"]
        self.timeline, self.timeline_unit = data["timeline"]["points"], data["timeline"]["unit"]
        if "failures" in data:
            self.failures = as_text(data["failures"])
            self.countries = as_text(data["countries"])
            self._show_replies(data["replies"])
            self.buttons = data["buttons"]
            if self.buttons and self.again_button not in {b["payload"] for b in self.buttons}:
                self.again_button = str(self.buttons[0]["payload"])

    def _show_replies(self, view: dict) -> None:
        self.replies = as_text(view["rows"])
        self.replies_page, self.replies_pages = view["page"], view["pages"]
        self.replies_total, self.replies_range = view["total"], view["range"]

    def _show(self, summary: dict, result, data: dict | None = None) -> None:
        if data is not None:
            self._show_insight(data)
        self.campaign = {k: str(v) for k, v in summary.items()}
        self.live = bool(summary["live"])
        self.rows = as_text(result.rows)
        self.total, self.pages, self.page = result.total, result.pages, result.page
        self.export_url = campaign_export_url(summary["id"])
        self.loaded, self.error = True, ""

    def _refresh(self) -> None:
        if not self._campaign_id:
            return
        try:
            with session_scope() as session:
                summary = campaign_results.campaign_summary(
                    session=session, actor=current_actor(), campaign_id=self._campaign_id
                )
                result = campaign_results.recipients_page(
                    session=session,
                    actor=current_actor(),
                    campaign_id=self._campaign_id,
                    status=self.status_filter,
                    search=self.search,
                    page=self.page,
                )
                data = _insight(session, current_actor(), self._campaign_id, force=True, replies_page=self.replies_page)
        except campaign_results.CampaignNotFound as exc:
            self.error, self.loaded, self.campaign, self.rows = str(exc), True, {}, []
            return
        self._show(summary, result, data)

    @requires(perm.CAMPAIGNS_VIEW)
    def load_campaign(self):
        """On page load: the campaign named by the URL."""
        match = _ID_IN_PATH.search(self.router.url.path or "")
        self.search, self.status_filter, self.page, self.replies_page = "", "", 1, 1
        self.campaign, self.rows, self.loaded, self.error = {}, [], False, ""
        self._campaign_id = int(match.group(1)) if match else 0
        if not self._campaign_id:
            self.error, self.loaded = "This campaign does not exist (or was deleted).", True
            return
        self._refresh()
        if self._campaign_id and not self.error:
            self._again_count()
        if self.live:
            return CampaignDetailState.watch_live

    def _read_args(self) -> tuple:
        """What a live read depends on: when it changed meanwhile, the read is not shown."""
        return (
            self._bound_secret(),
            self._campaign_id,
            self.status_filter,
            self.search,
            self.page,
            self.replies_page,
        )

    @rx.event(background=True)
    @requires(perm.CAMPAIGNS_VIEW)
    async def watch_live(self):
        async with self:
            if not self._campaign_id:
                return
            self._live_generation += 1
            generation, route, token = self._live_generation, self.router.url.path, self.router.session.client_token
        while True:
            await asyncio.sleep(LIVE_INTERVAL_S)
            async with self:
                if self._live_generation != generation or self.router.url.path != route:
                    return
                args = self._read_args()
            if not await tab_is_open(token):
                return
            try:
                read = await asyncio.to_thread(read_campaign, *args)
            except campaign_results.CampaignNotFound:
                read = None
            async with self:
                if read is None or self._live_generation != generation:
                    self.live = False
                    return
                if self._read_args() == args:
                    self._show(*read)
                if not self.live:
                    return

    @requires(perm.CAMPAIGNS_VIEW)
    def set_search(self, value: str):
        self.search, self.page = str(value)[:40], 1
        self._refresh()

    @requires(perm.CAMPAIGNS_VIEW)
    def filter_status(self, value: str):
        value = str(value)
        if value not in STATUS_OPTIONS:
            return rx.toast.error(f"Unknown status filter {value[:20]!r}.")
        self.status_filter, self.page = ("" if value == "all" else value), 1
        self._refresh()

    @requires(perm.CAMPAIGNS_VIEW)
    def next_page(self):
        self.page += 1
        self._refresh()

    @requires(perm.CAMPAIGNS_VIEW)
    def prev_page(self):
        self.page = max(1, self.page - 1)
        self._refresh()

    # --- replies, paged (issue 15) -------------------------------------------------------------

    def _replies_at(self, page: int):
        if not self._campaign_id:
            return None
        try:
            with session_scope() as session:
                result = replies_service.replies_page(
                    session=session, actor=current_actor(), campaign_id=self._campaign_id, page=page
                )
        except campaign_results.CampaignNotFound as exc:
            return rx.toast.error(str(exc))
        self._show_replies(campaign_insight.replies_view(result))
        return None

    @requires(perm.CAMPAIGNS_VIEW)
    def older_replies(self):
        """The next page of replies (older ones)."""
        return self._replies_at(self.replies_page + 1)

    @requires(perm.CAMPAIGNS_VIEW)
    def newer_replies(self):
        """The previous page of replies (newer ones)."""
        return self._replies_at(max(1, self.replies_page - 1))

    # --- "Send again to…" (issue 15) -------------------------------------------------------------

    def _again_count(self) -> None:
        try:
            with session_scope() as session:
                n = send_again.count(
                    session=session,
                    actor=current_actor(),
                    campaign_id=self._campaign_id,
                    kind=self.again_kind,
                    hours=self.again_hours,
                    button=self.again_button,
                )
            self.again_count = f"{n:,} recipient{'' if n == 1 else 's'}"
        except (send_again.SendAgainError, campaign_results.CampaignNotFound) as exc:
            self.again_count = str(exc)

    @requires(perm.CAMPAIGNS_VIEW)
    def set_again_kind(self, value: str):
        if value not in SEND_AGAIN_OPTIONS:
            return rx.toast.error("Choose who to send again to.")
        self.again_kind = value
        self._again_count()

    @requires(perm.CAMPAIGNS_VIEW)
    def set_again_hours(self, value: str):
        self.again_hours = str(value)[:6]
        self._again_count()

    @requires(perm.CAMPAIGNS_VIEW)
    def set_again_button(self, value: str):
        self.again_button = str(value)[:256]
        self._again_count()

    @requires(perm.CAMPAIGNS_EDIT)
    def send_again(self):
        """A new Draft with a frozen copy of the chosen recipients, opened in the wizard at step 2."""
        try:
            with session_scope() as session:
                draft = send_again.create(
                    session=session,
                    actor=current_actor(),
                    campaign_id=self._campaign_id,
                    kind=self.again_kind,
                    hours=self.again_hours,
                    button=self.again_button,
                )
                draft_id = draft.id
        except (send_again.SendAgainError, campaign_results.CampaignNotFound) as exc:
            return rx.toast.error(str(exc))
        return rx.redirect(routes.campaign_edit(str(draft_id)))
