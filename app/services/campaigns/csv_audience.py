"""A CSV file as a campaign's audience, in one call: store it, check it, register it on the draft.

The wizard's "Import from a file" hands the uploaded file object here (from a worker thread: checking a
20 MB file takes about a second). The file goes to the private upload folder (the size limit is checked
while copying, `uploads.store_upload`), is checked as a stream (`csv_reader.check_csv`), and only then is
recorded as the draft's audience (creating the draft first if it has only a name so far). A refusal at any
point leaves nothing behind: no stored file, no upload row, no change to the draft.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, BinaryIO

from sqlmodel import Session

from app.models import User
from app.services.audiences import uploads
from app.services.audiences.csv_reader import CsvCheck, CsvRefused, check_csv
from app.services.campaigns import drafts

INVALID_SHOWN = 100  # invalid rows listed on the page; all of them are in the download


class CsvAudienceRefused(ValueError):
    """The file itself is refused (not a CSV, too big, unreadable); the message is shown as is."""


@dataclass
class CsvAudience:
    campaign_id: int
    upload_id: int
    file_name: str
    check: CsvCheck
    summary: dict[str, str] = field(default_factory=dict)  # what the wizard shows of the file
    invalid_rows: list[dict[str, str]] = field(default_factory=list)  # {"line", "value", "reason"}, all kept


def attach_csv(
    *,
    session: Session,
    actor: User | None,
    source: BinaryIO,
    original_name: str,
    campaign_id: int | None,
    name: str,
    channel_id: Any = None,
) -> CsvAudience:
    """Store, check and register `source` as the audience of draft `campaign_id` (created, named `name`,
    when None). Raises CsvAudienceRefused for the file, or the draft services' errors (nothing is kept)."""
    try:
        stored = uploads.store_upload(source, original_name=original_name, purpose=drafts.UPLOAD_PURPOSE)
    except uploads.UploadRefused as exc:
        raise CsvAudienceRefused(str(exc)) from None
    try:
        check = check_csv(stored.path)
    except CsvRefused as exc:
        uploads.discard(stored.path, drafts.UPLOAD_PURPOSE)
        raise CsvAudienceRefused(str(exc)) from None
    try:
        if campaign_id is None:
            campaign_id = drafts.create_draft(session=session, actor=actor, name=name).id
        upload_row = drafts.register_upload(
            session=session, actor=actor, path=str(stored.path), original_name=stored.original_name, check=check
        )
        drafts.update_setup(
            session=session,
            actor=actor,
            campaign_id=campaign_id,
            name=name,
            audience_kind="csv",
            audience_ref=upload_row.id,
            channel_id=channel_id or None,
        )
        session.flush()
    except BaseException:
        uploads.discard(stored.path, drafts.UPLOAD_PURPOSE)
        raise
    invalid = [{"line": str(r.line), "value": r.value, "reason": r.reason} for r in check.invalid_rows]
    summary = {
        "file": stored.original_name,
        "rows": f"{check.rows:,}",
        "reach": f"{check.valid:,}",
        "invalid": f"{check.invalid:,}",
        "duplicates": f"{check.duplicates:,}",
        "delimiter": f"{check.delimiter_name} ({check.delimiter})",
        "columns": ", ".join(check.columns),
    }
    return CsvAudience(
        campaign_id=campaign_id,
        upload_id=upload_row.id,
        file_name=stored.original_name,
        check=check,
        summary=summary,
        invalid_rows=invalid,
    )
