"""The campaign wizard (SPEC S9–S11): /campaigns/new and /campaigns/[campaign_id]/edit.

Thin: every rule lives in app.services.campaigns.drafts (drafts, validation) and campaign_sending (send,
schedule). The draft is saved as soon as it has a name and on every change, so "Previous", "Next" and
leaving the page lose nothing. The uploaded CSV goes to the private upload dir (uploads.store_upload,
the 20 MB limit checked while copying); its path never reaches the browser.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, available_timezones

import reflex as rx

from app.db import session_scope
from app.domain import permissions as perm
from app.domain.variables import CONTACT_FIELDS, placeholder_label
from app.models import AudienceUpload, Campaign, Channel, Template
from app.services.audiences import summary as audience_service
from app.services.campaigns import drafts as svc
from app.services.audiences import lists as lists_service
from app.services.audiences import segments as segments_service
from app.services.audiences import uploads
from app.services.sending.lifecycle import SendingError, schedule_campaign, start_campaign, to_utc
from app.services.audiences.csv_reader import CsvRefused, check_csv, export_safe
from app.services.campaigns.test_message import SendTestError, latest_status, send_test_message
from app.whatsapp.components import template_variables
from components.whatsapp_preview import EMPTY_PREVIEW, PreviewParts, preview_parts
from state.base import AppState
from state.guard import current_actor, requires

TIMEZONES: list[str] = sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/")))
TIMEZONES = ["UTC", *TIMEZONES]
FIXED_TEXT = "__text__"
SAMPLE_CSV = "phone,first_name,last_name,city\n+33612345678,Maria,Lopez,Lyon\n+14155550123,John,Smith,Boston\n"
INVALID_SHOWN = 100
_ID_IN_PATH = re.compile(r"^/campaigns/(\d+)/edit/?$")
_ERRORS = (svc.CampaignError, SendingError, audience_service.AudienceError, perm.PermissionDenied)


def _check(path: str):
    return check_csv(path)


def _freeze_and_start(actor, campaign_id: int):
    with session_scope() as session:
        return start_campaign(session=session, actor=actor, campaign_id=campaign_id).status


def _send_test(actor, campaign_id, number: str):
    with session_scope() as session:
        return send_test_message(session=session, actor=actor, campaign_id=campaign_id, to=number)


_TEST_STATUS_WORDS = {"sent": "sent", "delivered": "delivered to the phone", "read": "read",
                      "failed": "not delivered", "unknown": "not confirmed by WhatsApp yet"}


class WizardState(AppState):
    campaign_id: str = ""
    step: int = 1
    loaded: bool = False
    error: str = ""
    problems: list[str] = []
    # step 1
    name: str = ""
    audience_kind: str = "segment"
    list_id: str = ""
    segment_id: str = ""
    upload_id: str = ""
    channel_id: str = ""
    list_options: list[dict[str, str]] = []
    segment_options: list[dict[str, str]] = []
    channel_options: list[dict[str, str]] = []
    summary: dict[str, str] = {}
    csv_step: str = "upload"  # upload | checking | done
    csv_error: str = ""
    csv_progress: int = 0
    csv_summary: dict[str, str] = {}
    invalid_rows: list[dict[str, str]] = []
    # step 2
    template_id: str = ""
    template_options: list[dict[str, str]] = []
    variables: list[dict[str, str]] = []  # {key, label, component, ref, fallback}
    field_options: list[str] = []
    preview: PreviewParts = EMPTY_PREVIEW
    sample_index: int = 0
    sample_count: int = 0
    sample_address: str = ""
    skipped: int = 0
    test_number: str = ""
    test_result: str = ""
    test_ok: bool = False
    test_busy: bool = False
    test_send_id: str = ""
    # step 3
    review: dict[str, str] = {}
    mapping_rows: list[dict[str, str]] = []
    send_open: bool = False
    schedule_open: bool = False
    timezone: str = "UTC"
    browser_tz: str = ""  # the user's own zone, to show the chosen instant in it too
    schedule_date: str = ""
    schedule_time: str = ""
    schedule_note: str = ""
    busy: bool = False
    _samples: list[dict] = []
    _components: list[dict] = []
    _invalid_all: list[dict] = []

    # --- helpers -----------------------------------------------------------------------------

    def _cid(self) -> int | None:
        return int(self.campaign_id) if self.campaign_id.isdigit() else None

    def _ref(self) -> str:
        return {"list": self.list_id, "segment": self.segment_id, "csv": self.upload_id}.get(self.audience_kind, "")

    def _load_options(self, session, actor) -> None:
        self.list_options = [{"id": str(r["id"]), "name": r["name"]}
                             for r in lists_service.list_lists(session=session, actor=actor)]
        self.segment_options = [{"id": str(r["id"]), "name": r["name"]}
                                for r in segments_service.list_segments(session=session, actor=actor, with_counts=False)]
        self.channel_options = [{"id": str(c.id), "name": c.name + (" (Sandbox)" if c.kind == "sandbox" and "sandbox" not in c.name.lower() else "")}
                                for c in svc.usable_channels(session=session, actor=actor)]

    def _show_campaign(self, campaign: Campaign) -> None:
        self.campaign_id = str(campaign.id)
        self.name = campaign.name
        self.audience_kind = campaign.audience_kind or "segment"
        self.list_id = str(campaign.audience_list_id or "")
        self.segment_id = str(campaign.audience_segment_id or "")
        self.upload_id = str(campaign.audience_upload_id or "")
        self.channel_id = str(campaign.channel_id or "")
        self.template_id = str(campaign.template_id or "")
        self.timezone = campaign.timezone or self.timezone

    def _refresh(self, session, actor) -> None:
        """Everything derived from the saved draft: summary, template variables, preview, problems."""
        campaign = session.get(Campaign, self._cid()) if self._cid() else None
        self._summary(session, actor, campaign)
        self._design(session, actor, campaign)
        if campaign is not None:
            self.problems = svc.step_problems(session=session, actor=actor, campaign_id=campaign.id, step=self.step)
            self._review(session, campaign)
        else:
            self.problems = ["Give the campaign a name."]

    def _summary(self, session, actor, campaign: Campaign | None) -> None:
        self.summary, self.field_options = {}, []
        if campaign is None or not campaign.audience_kind:
            return
        try:
            if campaign.audience_kind == "csv":
                upload = session.get(AudienceUpload, campaign.audience_upload_id) if campaign.audience_upload_id else None
                if upload is None:
                    return
                self.summary = {"name": upload.original_filename, "total": f"{upload.row_count:,}",
                                "reach": f"{upload.valid_count:,}", "invalid": f"{upload.invalid_count:,}",
                                "duplicates": f"{upload.duplicate_count:,}", "not_reachable": "0",
                                "unsubscribed": "0", "kind": "csv"}
                self.field_options = list(upload.columns)
                return
            ref = campaign.audience_list_id if campaign.audience_kind == "list" else campaign.audience_segment_id
            if ref is None:
                return
            s = audience_service.audience_summary(session=session, actor=actor, kind=campaign.audience_kind,
                                                  ref_id=ref, channel_id=campaign.channel_id)
        except _ERRORS as exc:
            self.summary = {"error": str(exc)}
            return
        self.summary = {"name": s.name, "total": f"{s.total:,}", "reach": f"{s.reach:,}",
                        "not_reachable": f"{s.not_reachable:,}", "unsubscribed": f"{s.unsubscribed:,}",
                        "no_channel": f"{s.no_channel:,}", "invalid": "0", "duplicates": "0", "kind": s.kind}
        self.field_options = [f for f in s.variable_fields if f in CONTACT_FIELDS or f.startswith("custom.")]

    def _design(self, session, actor, campaign: Campaign | None) -> None:
        self.template_options, self.variables, self.preview, self._components = [], [], EMPTY_PREVIEW, []
        self.sample_count, self.sample_address, self.skipped, self._samples = 0, "", 0, []
        if campaign is None or not campaign.channel_id:
            return
        self.template_options = [{"id": str(t.id), "name": f"{t.name} · {t.language}"}
                                 for t in svc.sendable_templates(session=session, actor=actor,
                                                                 channel_id=campaign.channel_id)]
        template = session.get(Template, campaign.template_id) if campaign.template_id else None
        if template is None:
            return
        self._components = list(template.components or [])
        mapping = campaign.variable_mapping or {}
        rows = []
        for v in template_variables(self._components, template.parameter_format):
            spec = mapping.get(v.key) or {}
            ref = FIXED_TEXT if spec.get("source") == "text" else str(spec.get("key") or "")
            fallback = str(spec.get("value") or "") if ref == FIXED_TEXT else str(spec.get("fallback") or "")
            rows.append({"key": v.key, "label": placeholder_label(v.key), "component": v.component,
                         "ref": ref, "fallback": fallback, "example": v.example})
        self.variables = rows
        preview = svc.design_preview(session=session, actor=actor, campaign_id=campaign.id)
        self._samples = preview.samples
        self.sample_count, self.skipped = len(preview.samples), preview.skipped
        self.sample_index = min(self.sample_index, max(0, self.sample_count - 1))
        self._show_sample()

    def _show_sample(self) -> None:
        sample = self._samples[self.sample_index] if self._samples else {"values": {}, "address": ""}
        self.sample_address = sample["address"]
        self.preview = preview_parts(self._components, sample["values"], use_examples=not self._samples)

    def _review(self, session, campaign: Campaign) -> None:
        channel = session.get(Channel, campaign.channel_id) if campaign.channel_id else None
        template = session.get(Template, campaign.template_id) if campaign.template_id else None
        audience_label = {"list": "Contact list", "segment": "Segment", "csv": "File"}.get(campaign.audience_kind, "")
        self.review = {"name": campaign.name, "audience": f"{audience_label}: {self.summary.get('name', '—')}",
                       "reach": self.summary.get("reach", "0"), "channel": channel.name if channel else "—",
                       "template": f"{template.name} · {template.language}" if template else "—"}
        self.mapping_rows = [{"label": v["label"],
                              "source": ("Text: " + v["fallback"]) if v["ref"] == FIXED_TEXT else (v["ref"] or "—"),
                              "fallback": "" if v["ref"] == FIXED_TEXT else v["fallback"]} for v in self.variables]

    def _run(self, fn) -> bool:
        """Run a draft change in one unit of work; False (and the message shown) when refused."""
        try:
            with session_scope() as session:
                fn(session, current_actor())
                self._refresh(session, current_actor())
        except _ERRORS as exc:
            self.error = str(exc)
            return False
        self.error = ""
        return True

    def _save_setup(self) -> bool:
        name = self.name

        def save(session, actor):
            if self._cid() is None:
                if not name.strip():
                    return
                self.campaign_id = str(svc.create_draft(session=session, actor=actor, name=name).id)
            svc.update_setup(session=session, actor=actor, campaign_id=self._cid(), name=name,
                             audience_kind=self.audience_kind, audience_ref=self._ref() or None,
                             channel_id=self.channel_id or None)
        return self._run(save)

    # --- page load ---------------------------------------------------------------------------

    @requires(perm.CAMPAIGNS_EDIT)
    def load_wizard(self):
        path = self.router.url.path or ""
        params = dict(self.router.url.query_parameters or {})
        match = _ID_IN_PATH.match(path)
        self.loaded, self.error, self.step, self.sample_index = False, "", 1, 0
        self.send_open = self.schedule_open = self.busy = False
        self.csv_step, self.csv_error, self.csv_summary, self.invalid_rows, self._invalid_all = "upload", "", {}, [], []
        self.test_result, self.test_ok, self.test_busy, self.test_send_id = "", False, False, ""
        actor = current_actor()
        try:
            with session_scope() as session:
                self._load_options(session, actor)
                if match:
                    campaign = svc.get_draft(session=session, actor=actor, campaign_id=match.group(1))
                    self._show_campaign(campaign)
                    self.step = campaign.wizard_step if campaign.wizard_step in svc.STEPS else 1
                else:
                    self.campaign_id, self.name, self.audience_kind = "", "", "segment"
                    self.list_id = self.segment_id = self.upload_id = self.template_id = ""
                    self.channel_id = self.channel_options[0]["id"] if len(self.channel_options) == 1 else ""
                # Back from "Create new list/segment": pick the new audience.
                created_list, created_segment = str(params.get("created_list", "")), str(params.get("created_segment", ""))
                if created_list.isdigit() and created_list in {o["id"] for o in self.list_options}:
                    self.audience_kind, self.list_id = "list", created_list
                elif created_segment.isdigit() and created_segment in {o["id"] for o in self.segment_options}:
                    self.audience_kind, self.segment_id = "segment", created_segment
                if (created_list or created_segment) and self._cid():
                    svc.update_setup(session=session, actor=actor, campaign_id=self._cid(), name=self.name,
                                     audience_kind=self.audience_kind, audience_ref=self._ref() or None,
                                     channel_id=self.channel_id or None)
                self._refresh(session, actor)
        except _ERRORS as exc:
            self.error = str(exc)
        self.loaded = True
        return rx.call_script("Intl.DateTimeFormat().resolvedOptions().timeZone", callback=WizardState.set_browser_tz)

    @requires(perm.CAMPAIGNS_EDIT)
    def set_browser_tz(self, value: str):
        if isinstance(value, str) and value in TIMEZONES:
            self.browser_tz = value
            if self.timezone == "UTC":
                self.timezone = value

    # --- step 1 ------------------------------------------------------------------------------

    @requires(perm.CAMPAIGNS_EDIT)
    def set_name(self, value: str):
        self.name = str(value)[:svc.MAX_NAME] if isinstance(value, str) else ""

    @requires(perm.CAMPAIGNS_EDIT)
    def save_name(self):
        self._save_setup()

    @requires(perm.CAMPAIGNS_EDIT)
    def set_audience_kind(self, value: str):
        if value not in svc.AUDIENCE_KINDS:
            return rx.toast.error("Choose a contact list, a segment or a file.")
        if value == "csv" and not perm.can(current_actor().role, perm.AUDIENCES_MANAGE):
            return rx.toast.error("Only admins and advanced users can import a file.")
        self.audience_kind = value
        self._save_setup()

    @requires(perm.CAMPAIGNS_EDIT)
    def set_list(self, value: str):
        if str(value) not in {o["id"] for o in self.list_options}:
            return rx.toast.error("That list no longer exists.")
        self.list_id = str(value)
        self._save_setup()

    @requires(perm.CAMPAIGNS_EDIT)
    def set_segment(self, value: str):
        if str(value) not in {o["id"] for o in self.segment_options}:
            return rx.toast.error("That segment no longer exists.")
        self.segment_id = str(value)
        self._save_setup()

    @requires(perm.CAMPAIGNS_EDIT)
    def set_channel(self, value: str):
        if str(value) not in {o["id"] for o in self.channel_options}:
            return rx.toast.error("Choose a connected WhatsApp channel.")
        self.channel_id = str(value)
        self._save_setup()

    @requires(perm.CAMPAIGNS_EDIT)
    def download_sample(self):
        return rx.download(data=SAMPLE_CSV, filename="hubcast-audience-template.csv")

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
        upload = files[0]
        try:
            stored = uploads.store_upload(upload.file, original_name=upload.filename or "", purpose=svc.UPLOAD_PURPOSE)
        except uploads.UploadRefused as exc:
            self.csv_error = str(exc)
            return
        self.csv_step, self.csv_error = "checking", ""
        yield
        try:
            check = await asyncio.to_thread(_check, str(stored.path))
        except CsvRefused as exc:
            uploads.discard(stored.path, svc.UPLOAD_PURPOSE)
            self.csv_step, self.csv_error = "upload", str(exc)
            return
        name = stored.original_name

        def register(session, actor):
            nonlocal name
            if self._cid() is None:
                self.campaign_id = str(svc.create_draft(session=session, actor=actor, name=self.name).id)
            upload_row = svc.register_upload(session=session, actor=actor, path=str(stored.path),
                                             original_name=name, check=check)
            self.upload_id, self.audience_kind = str(upload_row.id), "csv"
            svc.update_setup(session=session, actor=actor, campaign_id=self._cid(), name=self.name,
                             audience_kind="csv", audience_ref=upload_row.id, channel_id=self.channel_id or None)

        if not self._run(register):
            uploads.discard(stored.path, svc.UPLOAD_PURPOSE)
            self.csv_step = "upload"
            return
        self._invalid_all = [{"line": str(r.line), "value": r.value, "reason": r.reason} for r in check.invalid_rows]
        self.invalid_rows = self._invalid_all[:INVALID_SHOWN]
        self.csv_summary = {"file": name, "rows": f"{check.rows:,}", "reach": f"{check.valid:,}",
                            "invalid": f"{check.invalid:,}", "duplicates": f"{check.duplicates:,}",
                            "delimiter": f"{check.delimiter_name} ({check.delimiter})",
                            "columns": ", ".join(check.columns)}
        self.csv_step = "done"

    @requires(perm.AUDIENCES_MANAGE)
    def replace_file(self):
        self.csv_step, self.csv_error, self.csv_summary, self.invalid_rows, self._invalid_all = "upload", "", {}, [], []

    # --- navigation --------------------------------------------------------------------------

    def _go(self, step: int):
        if self._cid() is None:
            self.error = "Give the campaign a name."
            return
        self._run(lambda session, actor: svc.set_wizard_step(session=session, actor=actor,
                                                             campaign_id=self._cid(), step=step))
        if not self.error:
            self.step = step
            self._run(lambda session, actor: None)

    @requires(perm.CAMPAIGNS_EDIT)
    def next_step(self):
        if self._cid() is None and not self._save_setup():
            return
        if self._cid() is None:
            self.error = "Give the campaign a name."
            return
        if self.problems and self.step < 3:
            return rx.toast.error(self.problems[0])
        self._go(min(3, self.step + 1))

    @requires(perm.CAMPAIGNS_EDIT)
    def prev_step(self):
        self._go(max(1, self.step - 1))

    @requires(perm.CAMPAIGNS_EDIT)
    def edit_step(self, step: int):
        try:
            number = int(step)
        except (TypeError, ValueError):
            return rx.toast.error("Unknown step.")
        if number not in (1, 2):
            return rx.toast.error("Unknown step.")
        self._go(number)

    # --- step 2 ------------------------------------------------------------------------------

    def _save_design(self) -> bool:
        mapping = {}
        for v in self.variables:
            if v["ref"] == FIXED_TEXT:
                mapping[v["key"]] = {"source": "text", "value": v["fallback"]}
            elif v["ref"]:
                source = "column" if self.audience_kind == "csv" else "field"
                mapping[v["key"]] = {"source": source, "key": v["ref"], "fallback": v["fallback"]}
        template_id = self.template_id or None
        return self._run(lambda session, actor: svc.update_design(
            session=session, actor=actor, campaign_id=self._cid(), template_id=template_id, mapping=mapping))

    @requires(perm.CAMPAIGNS_EDIT)
    def set_template(self, value: str):
        if str(value) not in {o["id"] for o in self.template_options} or self._cid() is None:
            return rx.toast.error("Choose an approved template of the channel.")
        self.template_id, self.variables, self.sample_index = str(value), [], 0
        self._save_design()

    @requires(perm.CAMPAIGNS_EDIT)
    def set_var_ref(self, key: str, value: str):
        allowed = set(self.field_options) | {FIXED_TEXT}
        if value not in allowed or key not in {v["key"] for v in self.variables}:
            return rx.toast.error("Choose one of the listed fields.")
        self.variables = [{**v, "ref": value} if v["key"] == key else v for v in self.variables]
        self._save_design()

    @requires(perm.CAMPAIGNS_EDIT)
    def set_var_fallback(self, key: str, value: str):
        if not isinstance(value, str) or key not in {v["key"] for v in self.variables}:
            return rx.toast.error("That variable is not in the template.")
        self.variables = [{**v, "fallback": value[:1024]} if v["key"] == key else v for v in self.variables]
        self._save_design()

    @requires(perm.CAMPAIGNS_EDIT)
    def next_sample(self):
        if self.sample_index + 1 < len(self._samples):
            self.sample_index += 1
            self._show_sample()

    @requires(perm.CAMPAIGNS_EDIT)
    def prev_sample(self):
        if self.sample_index > 0:
            self.sample_index -= 1
            self._show_sample()

    # "Send a test message": campaigns:edit like every Design-step handler. Who may design a campaign may
    # check what it looks like on a phone; the test reaches only the number typed here, never the audience,
    # and changes no campaign (app.services.campaigns.test_message re-checks the capability and throttles per user).

    @requires(perm.CAMPAIGNS_EDIT)
    def set_test_number(self, value: str):
        self.test_number = str(value)[:40] if isinstance(value, str) else ""

    @requires(perm.CAMPAIGNS_EDIT)
    async def send_test(self):
        if self.test_busy:
            return
        if self.problems:  # the button is disabled for this reason; a crafted event gets the same answer
            self.test_ok, self.test_result = False, "The test cannot be sent yet: " + self.problems[0]
            return
        self.test_busy, self.test_result = True, ""
        yield
        try:
            result = await asyncio.to_thread(_send_test, current_actor(), self.campaign_id, self.test_number)
        except (*_ERRORS, SendTestError) as exc:
            self.test_busy, self.test_ok, self.test_result, self.test_send_id = False, False, str(exc), ""
            return
        self.test_busy, self.test_ok, self.test_result = False, result.ok, result.message
        self.test_send_id = str(result.test_send_id) if result.ok else ""

    @requires(perm.CAMPAIGNS_EDIT)
    def refresh_test_status(self):
        """Delivered / read, from the status webhooks WhatsApp sent for the test's wamid."""
        if not self.test_send_id:
            return
        with session_scope() as session:
            row = latest_status(session, self.test_send_id)
            if row is None or row.campaign_id != self._cid():
                self.test_send_id = ""
                return
            status, to, error = row.status, row.to, row.error
        self.test_ok = status != "failed"
        words = _TEST_STATUS_WORDS.get(status, status)
        self.test_result = f"Test to {to}: {words}; it is not counted in the campaign." + (f" {error}" if error else "")

    # --- step 3 ------------------------------------------------------------------------------

    @requires(perm.CAMPAIGNS_SEND)
    def open_send(self):
        if self.problems or self._cid() is None:
            return rx.toast.error(self.problems[0] if self.problems else "Finish the campaign first.")
        self.send_open = True

    @requires(perm.CAMPAIGNS_SEND)
    def close_dialogs(self):
        self.send_open = self.schedule_open = False

    @requires(perm.CAMPAIGNS_SEND)
    async def confirm_send(self):
        if self.busy or self._cid() is None:
            return
        self.busy = True
        yield
        try:
            await asyncio.to_thread(_freeze_and_start, current_actor(), self._cid())
        except _ERRORS as exc:
            self.busy, self.send_open, self.error = False, False, str(exc)
            yield rx.toast.error(str(exc))
            return
        self.busy = self.send_open = False
        yield [rx.toast.success(f"“{self.name}” is sending."), rx.redirect("/campaigns")]

    @requires(perm.CAMPAIGNS_SEND)
    def open_schedule(self):
        if self.problems or self._cid() is None:
            return rx.toast.error(self.problems[0] if self.problems else "Finish the campaign first.")
        self.schedule_open, self.schedule_note = True, ""
        self._note()

    def _note(self) -> None:
        if not (self.schedule_date and self.schedule_time):
            self.schedule_note = ""
            return
        try:
            when = to_utc(self.timezone, f"{self.schedule_date} {self.schedule_time}")
        except SendingError as exc:
            self.schedule_note = str(exc)
            return
        past = " — this time is in the past" if when <= datetime.now(UTC) else ""
        yours = ""
        if self.browser_tz and self.browser_tz not in (self.timezone, "UTC"):
            yours = f" ({when.astimezone(ZoneInfo(self.browser_tz)):%Y-%m-%d %H:%M} {self.browser_tz}, your time zone)"
        self.schedule_note = f"{when:%Y-%m-%d %H:%M} UTC{yours}{past}"

    @requires(perm.CAMPAIGNS_SEND)
    def set_timezone(self, value: str):
        if value not in TIMEZONES:
            return rx.toast.error("Choose a time zone from the list.")
        self.timezone = value
        self._note()

    @requires(perm.CAMPAIGNS_SEND)
    def set_schedule_date(self, value: str):
        self.schedule_date = str(value)[:10] if isinstance(value, str) else ""
        self._note()

    @requires(perm.CAMPAIGNS_SEND)
    def set_schedule_time(self, value: str):
        self.schedule_time = str(value)[:5] if isinstance(value, str) else ""
        self._note()

    @requires(perm.CAMPAIGNS_SEND)
    def confirm_schedule(self):
        if self._cid() is None:
            return rx.toast.error("Finish the campaign first.")
        if not (self.schedule_date and self.schedule_time):
            return rx.toast.error("Choose the date and the time.")
        try:
            with session_scope() as session:
                schedule_campaign(session=session, actor=current_actor(), campaign_id=self._cid(),
                                  tz=self.timezone, local_dt=f"{self.schedule_date} {self.schedule_time}")
        except _ERRORS as exc:
            return rx.toast.error(str(exc))
        self.schedule_open = False
        return [rx.toast.success(f"“{self.name}” is scheduled."), rx.redirect("/campaigns")]

    @rx.var
    def local_now(self) -> str:
        try:
            return datetime.now(ZoneInfo(self.timezone)).strftime("%Y-%m-%d %H:%M")
        except Exception:  # an odd value from the browser: show nothing rather than fail
            return ""
