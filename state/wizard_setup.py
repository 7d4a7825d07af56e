"""Wizard step 1, "Campaign setup": name, audience (list / segment / CSV file), channel (SPEC S9, S13–S15).

The uploaded CSV is handed to `csv_audience.attach_csv` in a worker thread: stored in the private upload dir
(the 20 MB limit checked while copying), checked, and registered on the draft in one call; its path never
reaches the browser.
"""

from __future__ import annotations

import asyncio
import csv
import io
from typing import Any

import reflex as rx

from app.db import session_scope
from app.domain import permissions as perm
from app.domain.permissions import Actor
from app.services.audiences.csv_reader import export_safe
from app.services.campaigns import csv_audience, drafts
from app.services.campaigns.csv_audience import INVALID_SHOWN, CsvAudience, CsvAudienceRefused
from app.services.campaigns.draft_view import DRAFT_ERRORS, DraftView, WizardOptions
from app.settings import PROJECT_ROOT
from state.guard import current_actor, requires
from state.wizard import WizardState

# Served as /sample-audience.csv too; its numbers are reserved for fiction (AU 0491 570 xxx, US 555-01xx).
SAMPLE_CSV_PATH = PROJECT_ROOT / "assets" / "sample-audience.csv"


def _attach(actor: Actor, upload: Any, campaign_id: int | None, name: str, channel_id: str) -> CsvAudience:
    with session_scope() as session:
        return csv_audience.attach_csv(
            session=session,
            actor=actor,
            source=upload.file,
            original_name=upload.filename or "",
            campaign_id=campaign_id,
            name=name,
            channel_id=channel_id or None,
        )


class WizardSetupState(WizardState):
    list_options: list[dict[str, str]] = []
    segment_options: list[dict[str, str]] = []
    channel_options: list[dict[str, str]] = []
    summary: dict[str, str] = {}
    csv_step: str = "upload"  # upload | checking | done
    csv_error: str = ""
    csv_progress: int = 0
    csv_summary: dict[str, str] = {}
    invalid_rows: list[dict[str, str]] = []
    _invalid_all: list[dict] = []

    def _reset_step(self) -> None:
        self.csv_step, self.csv_error, self.csv_summary, self.invalid_rows, self._invalid_all = "upload", "", {}, [], []

    def _show_options(self, options: WizardOptions) -> None:
        self.list_options, self.segment_options = options.lists, options.segments
        self.channel_options = options.channels

    def _show_view(self, view: DraftView) -> None:
        self.summary = view.summary

    @requires(perm.CAMPAIGNS_EDIT)
    def set_name(self, value: str):
        self.name = str(value)[: drafts.MAX_NAME] if isinstance(value, str) else ""

    @requires(perm.CAMPAIGNS_EDIT)
    async def save_name(self):
        await self._save_setup()

    @requires(perm.CAMPAIGNS_EDIT)
    async def set_audience_kind(self, value: str):
        if value not in drafts.AUDIENCE_KINDS:
            return rx.toast.error("Choose a contact list, a segment or a file.")
        if value == "csv" and not perm.can(current_actor().role, perm.AUDIENCES_MANAGE):
            return rx.toast.error("Only admins and advanced users can import a file.")
        self.audience_kind = value
        await self._save_setup()

    @requires(perm.CAMPAIGNS_EDIT)
    async def set_list(self, value: str):
        if str(value) not in {o["id"] for o in self.list_options}:
            return rx.toast.error("That list no longer exists.")
        self.list_id = str(value)
        await self._save_setup()

    @requires(perm.CAMPAIGNS_EDIT)
    async def set_segment(self, value: str):
        if str(value) not in {o["id"] for o in self.segment_options}:
            return rx.toast.error("That segment no longer exists.")
        self.segment_id = str(value)
        await self._save_setup()

    @requires(perm.CAMPAIGNS_EDIT)
    async def set_channel(self, value: str):
        if str(value) not in {o["id"] for o in self.channel_options}:
            return rx.toast.error("Choose a connected WhatsApp channel.")
        self.channel_id = str(value)
        await self._save_setup()

    # --- the audience from a file ------------------------------------------------------------

    @requires(perm.CAMPAIGNS_EDIT)
    def download_sample(self):
        return rx.download(data=SAMPLE_CSV_PATH.read_text(encoding="utf-8"), filename="hubcast-audience-template.csv")

    @requires(perm.CAMPAIGNS_EDIT)
    def download_invalid(self):
        if not self._invalid_all:
            return rx.toast.info("The file has no invalid rows.")
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["line", "value", "reason"])
        for row in self._invalid_all:
            writer.writerow([row["line"], export_safe(row["value"]), row["reason"]])
        return rx.download(data=out.getvalue(), filename="invalid-rows.csv")

    @requires(perm.AUDIENCES_MANAGE)
    def upload_progress(self, progress: dict):
        try:
            self.csv_progress = max(0, min(100, int(float(dict(progress).get("progress", 0)) * 100)))
        except (TypeError, ValueError):
            self.csv_progress = 0

    @requires(perm.AUDIENCES_MANAGE)
    async def handle_upload(self, files: list[rx.UploadFile]):
        if self.csv_step == "checking":
            yield rx.toast.info("A file is already being checked.")
            return
        if not isinstance(files, list) or len(files) != 1 or not hasattr(files[0], "file"):
            self.csv_error = "Choose one CSV file."
            return
        if not self.name.strip():
            self.csv_error = "Give the campaign a name first."
            return
        self.csv_step, self.csv_error = "checking", ""
        yield
        try:
            attached = await asyncio.to_thread(
                _attach, current_actor(), files[0], self._cid(), self.name, self.channel_id
            )
        except CsvAudienceRefused as exc:
            self.csv_step, self.csv_error = "upload", str(exc)
            return
        except DRAFT_ERRORS as exc:
            self.error, self.csv_step = str(exc), "upload"
            return
        self.campaign_id, self.upload_id, self.audience_kind = str(attached.campaign_id), str(attached.upload_id), "csv"
        await self._run(lambda session, actor: None)
        self._invalid_all = attached.invalid_rows
        self.invalid_rows = self._invalid_all[:INVALID_SHOWN]
        self.csv_summary = attached.summary
        self.csv_step = "done"

    @requires(perm.AUDIENCES_MANAGE)
    def replace_file(self):
        self.csv_step, self.csv_error, self.csv_summary, self.invalid_rows, self._invalid_all = "upload", "", {}, [], []
