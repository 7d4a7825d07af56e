"""All Campaigns (SPEC S3, S12, S16): the list, searchable, filterable, paged on the server, live while
anything sends.

Live status: `load` starts `watch_live`, a background task that re-reads the page (the campaigns'
denormalised counters, cheap) every LIVE_INTERVAL_S while some campaign is sending, scheduled or still
receiving statuses, and stops when nothing is, when the tab moves to another page or closes, when the
session ends, or when a newer page load started another watcher (a generation number).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import reflex as rx

from app.db import session_scope
from app.domain import permissions as perm
from app.domain.time_zones import is_known_zone
from app.services.accounts import auth
from app.services.campaigns import drafts, listing
from app.services.campaigns import results as campaign_results
from app.services.sending import lifecycle as sending
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


def read_campaigns_page(secret: str, query: dict):
    """(page, live) for the user behind `secret`, or None when the session ended or lost the right.
    `query` is CampaignsState._query(): search, status, page, sort, direction and dates."""
    with session_scope() as session:
        user = auth.resolve_session(session=session, secret=secret)
        if user is None or not perm.can(user.role, perm.CAMPAIGNS_VIEW):
            return None
        try:
            result = listing.campaigns_page(session=session, actor=user, **query)
        except listing.ListingError:
            return None
        return result, campaign_results.anything_live(session=session, actor=user)


class CampaignsState(AppState):
    rows: list[dict[str, str]] = []
    total: int = 0
    any_campaign: bool = False
    loaded: bool = False
    live: bool = False  # something is sending: the page refreshes itself
    search: str = ""
    status_filter: str = ""
    # Sorting and the date range (issue 15 §8): a column key of listing.SORT_KEYS, "asc"/"desc", YYYY-MM-DD.
    sort: str = listing.DEFAULT_SORT
    direction: str = listing.DEFAULT_DIRECTION
    date_from: str = ""
    date_to: str = ""
    filter_error: str = ""  # why the last filter could not be used (shown beside the filters)
    page: int = 1
    pages: int = 1
    _live_generation: int = 0
    # Row actions: the draft about to be deleted, the scheduled campaign being rescheduled.
    delete_id: str = ""
    delete_name: str = ""
    reschedule_id: str = ""
    reschedule_name: str = ""
    reschedule_tz: str = "UTC"
    reschedule_date: str = ""
    reschedule_time: str = ""
    reschedule_note: str = ""  # the chosen instant in UTC (or why it cannot be used), shown as the user types
    reschedule_error: str = ""  # a refusal, shown inside the dialog (a toast would sit under its overlay)

    def _show(self, result, live: bool) -> None:
        self.rows = as_text(result.rows)
        self.total, self.pages, self.page = result.total, result.pages, result.page
        self.live = live
        self.loaded = True

    def _query(self) -> dict:
        return {
            "search": self.search,
            "status": self.status_filter,
            "page": self.page,
            "sort": self.sort,
            "direction": self.direction,
            "date_from": self.date_from,
            "date_to": self.date_to,
        }

    def _refresh(self) -> None:
        with session_scope() as session:
            actor = current_actor()
            try:
                result = listing.campaigns_page(session=session, actor=actor, **self._query())
                self.filter_error = ""
            except listing.ListingError as exc:
                if self.loaded:  # keep what the table showed; say why the new filter was not applied
                    self.filter_error = str(exc)
                    return
                # A fresh page load with filters this tab kept from before: start from the whole list.
                self.status_filter = self.date_from = self.date_to = ""
                self.sort, self.direction, self.page = listing.DEFAULT_SORT, listing.DEFAULT_DIRECTION, 1
                result = listing.campaigns_page(session=session, actor=actor, **self._query())
                self.filter_error = str(exc)
            if not self.any_campaign:
                self.any_campaign = bool(result.total) or bool(
                    listing.campaigns_page(session=session, actor=actor, page_size=1).total
                )
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
                secret, query = self._bound_secret(), self._query()
            if not await tab_is_open(token):
                return
            # Database work outside the lock, in a thread: the tab stays responsive meanwhile.
            read = await asyncio.to_thread(read_campaigns_page, secret, query)
            async with self:
                if read is None:
                    self.live = False
                    return  # the session ended: the next click meets the guard and the login page
                if self._live_generation != generation:
                    return
                if self._query() == query:
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
    def sort_by(self, column: str):
        """A column header was clicked: sort by it, or flip the direction when it already sorts."""
        column = str(column)[:20]
        if column not in listing.SORT_KEYS:
            return rx.toast.error(f"Campaigns cannot be sorted by {column!r}.")
        if self.sort == column:
            self.direction = "asc" if self.direction == "desc" else "desc"
        else:  # names and people read A→Z first; numbers and dates biggest / newest first
            self.sort, self.direction = (
                column,
                ("asc" if column in ("name", "status", "channel", "created_by") else "desc"),
            )
        self.page = 1
        self._refresh()

    @requires(perm.CAMPAIGNS_VIEW)
    def set_date_from(self, value: str):
        self.date_from, self.page = (str(value)[:10] if isinstance(value, str) else ""), 1
        self._refresh()

    @requires(perm.CAMPAIGNS_VIEW)
    def set_date_to(self, value: str):
        self.date_to, self.page = (str(value)[:10] if isinstance(value, str) else ""), 1
        self._refresh()

    @requires(perm.CAMPAIGNS_VIEW)
    def clear_dates(self):
        self.date_from = self.date_to = ""
        self.page = 1
        self._refresh()

    @requires(perm.CAMPAIGNS_VIEW)
    def next_page(self):
        self.page += 1
        self._refresh()

    @requires(perm.CAMPAIGNS_VIEW)
    def prev_page(self):
        self.page = max(1, self.page - 1)
        self._refresh()

    # --- row actions ---------------------------------------------------------------------------

    def _act(self, fn, done: str):
        """Run a row action; the list is re-read either way, and live updates resume if needed."""
        try:
            with session_scope() as session:
                fn(session, current_actor())
        except (drafts.CampaignError, sending.SendingError, perm.PermissionDenied) as exc:
            self._refresh()
            return rx.toast.error(str(exc))
        self._refresh()
        events = [rx.toast.success(done)]
        if self.live:
            events.append(CampaignsState.watch_live)
        return events

    @requires(perm.CAMPAIGNS_EDIT)
    def duplicate_campaign(self, campaign_id: str):
        return self._act(
            lambda s, a: drafts.duplicate_campaign(session=s, actor=a, campaign_id=campaign_id),
            "Copied into a new draft.",
        )

    @requires(perm.CAMPAIGNS_EDIT)
    def open_delete(self, campaign_id: str):
        row = next((r for r in self.rows if r.get("id") == str(campaign_id) and r.get("status") == "draft"), None)
        if row is None:
            return rx.toast.error("Only drafts can be deleted.")
        self.delete_id, self.delete_name = row["id"], row.get("name", "")

    @requires(perm.CAMPAIGNS_EDIT)
    def close_delete(self):
        self.delete_id = self.delete_name = ""

    @requires(perm.CAMPAIGNS_EDIT)
    def confirm_delete(self):
        if not self.delete_id:
            return rx.toast.error("Choose a draft to delete.")
        target, self.delete_id, self.delete_name = self.delete_id, "", ""
        return self._act(lambda s, a: drafts.delete_draft(session=s, actor=a, campaign_id=target), "Draft deleted.")

    @requires(perm.CAMPAIGNS_SEND)
    def cancel_campaign(self, campaign_id: str):
        return self._act(
            lambda s, a: sending.cancel_campaign(session=s, actor=a, campaign_id=campaign_id), "Campaign cancelled."
        )

    @requires(perm.CAMPAIGNS_SEND)
    def pause_campaign(self, campaign_id: str):
        return self._act(
            lambda s, a: sending.pause_campaign(
                session=s, actor=a, campaign_id=campaign_id, reason="Paused from All Campaigns"
            ),
            "Campaign paused.",
        )

    @requires(perm.CAMPAIGNS_SEND)
    def resume_campaign(self, campaign_id: str):
        return self._act(
            lambda s, a: sending.resume_campaign(session=s, actor=a, campaign_id=campaign_id), "Campaign resumed."
        )

    @requires(perm.CAMPAIGNS_SEND)
    def open_reschedule(self, campaign_id: str):
        row = next((r for r in self.rows if r.get("id") == str(campaign_id) and r.get("status") == "scheduled"), None)
        if row is None:
            return rx.toast.error("Only scheduled campaigns can be rescheduled.")
        try:  # start from the run time the user chose, in the zone they chose it in
            with session_scope() as session:
                tz, date, time = drafts.current_schedule(session=session, actor=current_actor(), campaign_id=row["id"])
        except (drafts.CampaignError, perm.PermissionDenied) as exc:
            self._refresh()
            return rx.toast.error(str(exc))
        self.reschedule_id, self.reschedule_name = row["id"], row.get("name", "")
        self.reschedule_tz, self.reschedule_date, self.reschedule_time = tz, date, time
        self.reschedule_error = ""
        self._reschedule_note()

    def _reschedule_note(self) -> None:
        self.reschedule_error = ""
        if not (self.reschedule_date and self.reschedule_time):
            self.reschedule_note = ""
            return
        try:
            when = sending.to_utc(self.reschedule_tz, f"{self.reschedule_date} {self.reschedule_time}")
        except sending.SendingError as exc:
            self.reschedule_note = str(exc)
            return
        past = " — this time is in the past" if when <= datetime.now(UTC) else ""
        self.reschedule_note = f"Sends at {when:%Y-%m-%d %H:%M} UTC{past}"

    @requires(perm.CAMPAIGNS_SEND)
    def close_reschedule(self):
        self.reschedule_id = self.reschedule_error = ""

    @requires(perm.CAMPAIGNS_SEND)
    def set_reschedule_tz(self, value: str):
        if not is_known_zone(value):
            return rx.toast.error("Choose a time zone from the list.")
        self.reschedule_tz = value
        self._reschedule_note()

    @requires(perm.CAMPAIGNS_SEND)
    def set_reschedule_date(self, value: str):
        self.reschedule_date = str(value)[:10] if isinstance(value, str) else ""
        self._reschedule_note()

    @requires(perm.CAMPAIGNS_SEND)
    def set_reschedule_time(self, value: str):
        self.reschedule_time = str(value)[:5] if isinstance(value, str) else ""
        self._reschedule_note()

    @requires(perm.CAMPAIGNS_SEND)
    def confirm_reschedule(self):
        if not self.reschedule_id:
            return rx.toast.error("Choose a scheduled campaign.")
        if not (self.reschedule_date and self.reschedule_time):
            self.reschedule_error = "Choose the date and the time."
            return
        target, when, tz = self.reschedule_id, f"{self.reschedule_date} {self.reschedule_time}", self.reschedule_tz
        try:
            with session_scope() as session:
                sending.reschedule_campaign(
                    session=session, actor=current_actor(), campaign_id=target, tz=tz, local_dt=when
                )
        except (sending.SendingError, perm.PermissionDenied) as exc:
            self.reschedule_error = str(exc)  # the dialog stays open with the reason; nothing changed
            self._refresh()
            return
        self.reschedule_id = self.reschedule_error = ""
        self._refresh()
        return rx.toast.success("Campaign rescheduled.")
