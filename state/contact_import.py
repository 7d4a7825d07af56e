"""The "Import contacts" dialog: upload → summary → target list → Confirm. Nothing is written before Confirm.

The uploaded file goes straight to the private upload dir (app.services.audiences.uploads, 20 MB checked while
copying); only its server path is kept, in a backend-only var. Checking and importing a large file take
seconds, so they run in a worker thread: the server keeps answering everyone else meanwhile.
"""

from __future__ import annotations

import asyncio

import reflex as rx

from app.db import session_scope
from app.domain import permissions as perm
from app.domain.permissions import Actor
from app.services.audiences import contact_import as contacts_service
from app.services.audiences import lists, uploads
from app.services.audiences.contact_import import ImportPreview, ImportResult
from app.services.audiences.contacts import ContactError
from state import offload
from state.base import AppState
from state.contacts import ContactsState
from state.guard import current_actor, requires

INVALID_SHOWN = 100
TARGETS = ("none", "existing", "new")


def _preview(actor: Actor, path: str) -> ImportPreview:
    with session_scope() as session:
        return contacts_service.preview_import(session=session, actor=actor, path=path)


def _commit(actor: Actor, path: str, list_id: str, new_list_name: str) -> ImportResult:
    with session_scope() as session:
        return contacts_service.commit_import(
            session=session, actor=actor, path=path, list_id=list_id or None, new_list_name=new_list_name
        )


class ContactImportState(AppState):
    import_open: bool = False
    step: str = "upload"  # upload | checking | summary | importing | done
    error: str = ""
    progress: int = 0
    file_name: str = ""
    summary: dict[str, str] = {}
    invalid_rows: list[dict[str, str]] = []
    invalid_more: int = 0
    target: str = "none"
    target_list_id: str = ""
    new_list_name: str = ""
    list_options: list[dict[str, str]] = []
    result: dict[str, str] = {}
    _path: str = ""  # server-side only: where the uploaded file waits for Confirm

    def _discard(self) -> None:
        if self._path:
            uploads.discard(self._path)
        self._path = ""

    def _reset(self) -> None:
        self._discard()
        self.step, self.error, self.progress, self.file_name = "upload", "", 0, ""
        self.summary, self.invalid_rows, self.invalid_more, self.result = {}, [], 0, {}
        self.target, self.target_list_id, self.new_list_name = "none", "", ""

    @requires(perm.AUDIENCES_MANAGE)
    def open_import(self):
        self._reset()
        uploads.sweep_stale()
        with session_scope() as session:
            self.list_options = [
                {"id": str(r["id"]), "name": r["name"]}
                for r in lists.list_lists(session=session, actor=current_actor())
            ]
        self.import_open = True

    @requires(perm.AUDIENCES_MANAGE)
    def close_import(self):
        if self.step in ("checking", "importing"):
            return rx.toast.info("Wait until the file is checked or imported.")
        self._reset()
        self.import_open = False

    @requires(perm.AUDIENCES_MANAGE)
    def start_over(self):
        if self.step in ("checking", "importing"):
            return
        self._reset()

    @requires(perm.AUDIENCES_MANAGE)
    def upload_progress(self, progress: dict):
        try:
            self.progress = max(0, min(100, int(float(dict(progress).get("progress", 0)) * 100)))
        except (TypeError, ValueError):
            self.progress = 0

    @requires(perm.AUDIENCES_MANAGE)
    async def handle_upload(self, files: list[rx.UploadFile]):
        if self.step in ("checking", "importing"):
            yield rx.toast.info("A file is already being processed.")
            return
        if not isinstance(files, list) or len(files) != 1 or not hasattr(files[0], "file"):
            self.error = "Choose one CSV file."
            return
        self._reset()
        upload = files[0]
        try:
            stored = uploads.store_upload(upload.file, original_name=upload.filename or "")
        except uploads.UploadRefused as exc:
            self.error = str(exc)
            return
        self._path, self.file_name, self.step = str(stored.path), stored.original_name, "checking"
        yield
        try:
            preview = await asyncio.to_thread(_preview, current_actor(), self._path)
        except ContactError as exc:
            self._discard()
            self.step, self.error = "upload", str(exc)
            return
        self.summary = {
            "rows": f"{preview.rows:,}",
            "new": f"{preview.new:,}",
            "updated": f"{preview.updated:,}",
            "invalid": f"{preview.invalid:,}",
            "duplicates": f"{preview.duplicates:,}",
            "importable": str(preview.new + preview.updated),
            "delimiter": f"{preview.delimiter_name} ({preview.delimiter})",
            "id_column": preview.id_column,
            "columns": ", ".join(preview.columns),
            "fields": ", ".join(preview.field_columns) or "none",
            "custom": ", ".join(preview.custom_columns) or "none",
            "ignored": ", ".join(preview.ignored_columns),
            "size": f"{preview.size_bytes / 1024:,.1f} KB",
        }
        self.invalid_rows = [
            {"line": str(r.line), "value": r.value, "reason": r.reason} for r in preview.invalid_rows[:INVALID_SHOWN]
        ]
        self.invalid_more = max(0, preview.invalid - len(self.invalid_rows))
        self.step = "summary"

    @requires(perm.AUDIENCES_MANAGE)
    def set_target(self, value: str):
        self.target = value if value in TARGETS else "none"

    @requires(perm.AUDIENCES_MANAGE)
    def set_target_list(self, value: str):
        self.target_list_id = str(value) if str(value) in {o["id"] for o in self.list_options} else ""

    @requires(perm.AUDIENCES_MANAGE)
    def set_new_list_name(self, value: str):
        self.new_list_name = str(value)[:120]

    @requires(perm.AUDIENCES_MANAGE)
    async def confirm_import(self):
        if self.step != "summary" or uploads.owned_path(self._path) is None:
            self.error = "Upload a CSV file first."
            return
        list_id = self.target_list_id if self.target == "existing" else ""
        new_name = self.new_list_name.strip() if self.target == "new" else ""
        if self.target == "existing" and not list_id:
            self.error = "Choose the list to add the contacts to."
            return
        if self.target == "new" and not new_name:
            self.error = "Name the new list."
            return
        if self.summary.get("importable") == "0":
            self.error = "The file has no valid row to import."
            return
        self.step, self.error = "importing", ""
        yield
        try:
            result = await asyncio.to_thread(_commit, current_actor(), self._path, list_id, new_name)
        except ContactError as exc:
            self.step, self.error = "summary", str(exc)
            return
        self._discard()
        self.result = {
            "created": f"{result.created:,}",
            "updated": f"{result.updated:,}",
            "invalid": f"{result.invalid:,}",
            "list_name": result.list_name,
            "added": f"{result.added_to_list:,}",
        }
        self.step = "done"
        offload.forget(current_actor())  # the contacts page must show the imported rows, not a cached page
        yield ContactsState.load
