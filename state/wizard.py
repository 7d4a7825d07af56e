"""The campaign wizard (SPEC S9–S11): /campaigns/new and /campaigns/[campaign_id]/edit.

One shared base and one substate per step, each in its own module beside its component:
- `WizardState` (here): the draft being edited (its id and saved choices), the current step, why the step
  cannot go on (`problems`), the page load and the navigation between steps, the schedule's time zone;
- `WizardSetupState` (state/wizard_setup.py): step 1, name, audience (list / segment / CSV file), channel;
- `WizardDesignState` (state/wizard_design.py): step 2, template, variables, preview, the test message;
- `WizardReviewState` (state/wizard_review.py): step 3, the review, Send and Schedule.

Thin: every rule lives in the services (app.services.campaigns.drafts for the draft, .draft_view for what the
wizard shows of it, .csv_audience for an uploaded file, app.services.sending.lifecycle to send or schedule).
The draft is saved as soon as it has a name and on every change, so "Previous", "Next" and leaving the page
lose nothing. After each change the base re-reads the draft once (`draft_view`) and hands the result to
every step (`_show_view`), so the review and the preview always describe what is saved.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

import reflex as rx

from app.db import session_scope
from app.domain import permissions as perm
from app.domain.time_zones import is_known_zone
from app.services.campaigns import draft_view as views
from app.services.campaigns import drafts
from app.services.campaigns.draft_view import DRAFT_ERRORS, DraftView, WizardOptions
from components import routes
from state import offload
from state.base import AppState
from state.guard import current_actor, requires

_ID_IN_PATH = re.compile("^" + re.escape(routes.CAMPAIGNS) + r"/(\d+)/edit/?$")


class WizardState(AppState):
    campaign_id: str = ""
    step: int = 1
    loaded: bool = False
    error: str = ""
    problems: list[str] = []
    # The draft's saved choices (step 1 and the template of step 2): every step reads them.
    name: str = ""
    audience_kind: str = "segment"
    list_id: str = ""
    segment_id: str = ""
    upload_id: str = ""
    channel_id: str = ""
    template_id: str = ""
    timezone: str = "UTC"
    browser_tz: str = ""  # the user's own zone, to show the chosen instant in it too
    # The address and websocket connection the wizard was last loaded for (see load_wizard).
    _loaded_url: str = ""
    _loaded_sid: str = ""

    # --- hooks each step's substate overrides ---------------------------------------------------

    def _reset_step(self) -> None:
        """Forget the step's transient UI (dialogs, an upload in progress) when the page loads."""

    def _show_options(self, options: WizardOptions) -> None:
        """What the draft may choose (lists, segments, channels)."""

    def _show_view(self, view: DraftView) -> None:
        """What the saved draft now looks like."""

    # --- helpers -----------------------------------------------------------------------------

    def _cid(self) -> int | None:
        return int(self.campaign_id) if self.campaign_id.isdigit() else None

    def _ref(self) -> str:
        return {"list": self.list_id, "segment": self.segment_id, "csv": self.upload_id}.get(self.audience_kind, "")

    async def _steps(self) -> list[WizardState]:
        return [
            await self.get_state(cls) for cls in sorted(WizardState.get_substates(), key=lambda c: c.get_full_name())
        ]

    async def _show(self, view: DraftView) -> None:
        self.problems = view.problems
        for step in await self._steps():
            step._show_view(view)

    async def _run(self, fn: Callable) -> bool:
        """Run a draft change in one unit of work and show the draft as saved; False (and the message
        shown) when refused."""
        actor, step = current_actor(), self.step

        def save_and_view():
            with session_scope() as session:
                fn(session, actor)
                # The saved draft's id (a first save creates it): read after fn, on this thread.
                return views.draft_view(session=session, actor=actor, campaign_id=self._cid(), step=step)

        try:
            # Off the event loop, one at a time per user (the view counts the audience's reach), never cached:
            # it writes. fn may set vars (a new draft's id): the state lock is held for the whole handler.
            view = await offload.run(actor, "draft_save", save_and_view, cache_s=0)
        except DRAFT_ERRORS as exc:
            self.error = str(exc)
            return False
        self.error = ""
        await self._show(view)
        return True

    def _save_setup_in(self, session, actor) -> None:
        if self._cid() is None:
            if not self.name.strip():
                return
            self.campaign_id = str(drafts.create_draft(session=session, actor=actor, name=self.name).id)
        drafts.update_setup(
            session=session,
            actor=actor,
            campaign_id=self._cid(),
            name=self.name,
            audience_kind=self.audience_kind,
            audience_ref=self._ref() or None,
            channel_id=self.channel_id or None,
        )

    async def _save_setup(self) -> bool:
        return await self._run(self._save_setup_in)

    # --- page load ---------------------------------------------------------------------------

    @requires(perm.CAMPAIGNS_EDIT)
    async def load_wizard(self):
        path = self.router.url.path or ""
        params = dict(self.router.url.query_parameters or {})
        match = _ID_IN_PATH.match(path)
        url, sid = str(self.router.url), self.router.session.session_id
        # Reflex runs on_load again each time the websocket (re)connects. The same tab back on the same address
        # over a new connection (a dropped network, a web process restarted behind nginx, a reload) resumes:
        # the draft being built stays (at /campaigns/new it is known only here) and so does what each step
        # shows (a checked file's summary, an open dialog). A visit (a link, the menu) starts afresh.
        resumed = self.loaded and not self.error and url == self._loaded_url and sid != self._loaded_sid
        self._loaded_url, self._loaded_sid = url, sid
        steps = await self._steps()
        if not resumed:
            self.step = 1
            for step in steps:
                step._reset_step()
        self.loaded, self.error = False, ""
        actor = current_actor()
        try:

            def load():  # off the event loop, one at a time per user (the view counts the audience's reach)
                with session_scope() as session:
                    options = views.wizard_options(session=session, actor=actor)
                    for step in steps:
                        step._show_options(options)
                    if match:
                        saved = views.open_draft(session=session, actor=actor, campaign_id=match.group(1))
                        for key in (
                            "campaign_id",
                            "name",
                            "audience_kind",
                            "list_id",
                            "segment_id",
                            "upload_id",
                            "channel_id",
                            "template_id",
                            "step",
                        ):
                            setattr(self, key, saved[key])
                        self.timezone = saved["timezone"] or self.timezone
                    elif not resumed:  # a resumed new campaign keeps its choices so far, saved or not
                        self.campaign_id, self.name, self.audience_kind = "", "", "segment"
                        self.list_id = self.segment_id = self.upload_id = self.template_id = ""
                        self.channel_id = options.channels[0]["id"] if len(options.channels) == 1 else ""
                    # Back from "Create new list/segment": pick the new audience.
                    created_list = str(params.get("created_list", ""))
                    created_segment = str(params.get("created_segment", ""))
                    if created_list.isdigit() and created_list in {o["id"] for o in options.lists}:
                        self.audience_kind, self.list_id = "list", created_list
                    elif created_segment.isdigit() and created_segment in {o["id"] for o in options.segments}:
                        self.audience_kind, self.segment_id = "segment", created_segment
                    if (created_list or created_segment) and self._cid():
                        drafts.update_setup(
                            session=session,
                            actor=actor,
                            campaign_id=self._cid(),
                            name=self.name,
                            audience_kind=self.audience_kind,
                            audience_ref=self._ref() or None,
                            channel_id=self.channel_id or None,
                        )
                    return views.draft_view(session=session, actor=actor, campaign_id=self._cid(), step=self.step)

            view = await offload.run(actor, "draft_load", load, cache_s=0)
            await self._show(view)
        except DRAFT_ERRORS as exc:
            self.error = str(exc)
        self.loaded = True
        return rx.call_script("Intl.DateTimeFormat().resolvedOptions().timeZone", callback=WizardState.set_browser_tz)

    @requires(perm.CAMPAIGNS_EDIT)
    def set_browser_tz(self, value: str):
        if is_known_zone(value):
            self.browser_tz = value
            if self.timezone == "UTC":
                self.timezone = value

    # --- navigation --------------------------------------------------------------------------

    async def _go(self, step: int):
        if self._cid() is None:
            self.error = "Give the campaign a name."
            return
        await self._run(
            lambda session, actor: drafts.set_wizard_step(
                session=session, actor=actor, campaign_id=self._cid(), step=step
            )
        )
        if not self.error:
            self.step = step
            await self._run(lambda session, actor: None)

    @requires(perm.CAMPAIGNS_EDIT)
    async def next_step(self):
        if self._cid() is None and not await self._save_setup():
            return
        if self._cid() is None:
            self.error = "Give the campaign a name."
            return
        if self.problems and self.step < 3:
            return rx.toast.error(self.problems[0])
        await self._go(min(3, self.step + 1))
        if not self.error and not _ID_IN_PATH.match(self.router.url.path or ""):
            # The saved draft gets its own address: a reload, or a websocket reconnecting to another web
            # process (which runs this page's on_load again), resumes it instead of starting a new campaign.
            return rx.redirect(f"{routes.CAMPAIGNS}/{self.campaign_id}/edit", replace=True)

    @requires(perm.CAMPAIGNS_EDIT)
    async def prev_step(self):
        await self._go(max(1, self.step - 1))

    @requires(perm.CAMPAIGNS_EDIT)
    async def edit_step(self, step: int):
        try:
            number = int(step)
        except (TypeError, ValueError):
            return rx.toast.error("Unknown step.")
        if number not in (1, 2):
            return rx.toast.error("Unknown step.")
        await self._go(number)

    @rx.var
    def local_now(self) -> str:
        try:
            return datetime.now(ZoneInfo(self.timezone)).strftime("%Y-%m-%d %H:%M")
        except Exception:  # an odd value from the browser: show nothing rather than fail
            return ""
