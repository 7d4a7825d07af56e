"""How long uploaded audience CSVs stay on the server (issue 13 item 13; ASVS V8.3.8: personal data kept only
as long as it is needed).

A campaign's CSV is read until its audience is frozen into recipients; afterwards the campaign's results come
from those rows, and the file is only kept in case someone duplicates the campaign. So a file is deleted once
every campaign that uses it has ended (sent, failed, cancelled: none is a draft, scheduled, sending or paused)
at least the retention ago (`HUBCAST_UPLOAD_RETENTION_DAYS`, default 30), or, when no campaign uses it any more
(its draft was deleted, or another file was chosen), once it is older than the retention (so at the deletion
itself when it was uploaded more than the retention before: nothing can bring a deleted draft back). The row and its counts
stay, marked `purged_at`; a campaign duplicated later asks for the file again (`recipients.CSV_GONE`).

Also swept: leftovers of the parallel CSV check's private scratch folders (`csv_parallel.scratch_dir`), should
the process that made one have died before removing it.

Run by every worker's periodic tick (workers/jobs.py): one query, usually returning nothing.
"""

from __future__ import annotations

import logging
import shutil
import time
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import and_, exists, func, or_, select, update
from sqlmodel import Session

from app.domain.campaign_status import CANCELLED, FAILED, SENT
from app.models import AudienceUpload, Campaign
from app.services.accounts import audit
from app.services.audiences import uploads
from app.settings import get_settings
from app.timeutil import utcnow

log = logging.getLogger(__name__)
ENDED = (SENT, FAILED, CANCELLED)
BATCH = 200
SCRATCH_STALE_S = 3600  # a parallel check takes seconds; an hour-old scratch folder belongs to a dead process


def retention() -> timedelta:
    return timedelta(days=get_settings().upload_retention_days)


def expired_upload_ids(session: Session, now: datetime) -> list[tuple[int, str]]:
    """(id, stored path) of the files whose retention has passed, oldest first."""
    cutoff = now - retention()
    still_needed = exists().where(
        Campaign.audience_upload_id == AudienceUpload.id,
        or_(
            Campaign.status.notin_(ENDED),
            func.coalesce(Campaign.finished_at, Campaign.updated_at) > cutoff,
        ),
    )
    query = (
        select(AudienceUpload.id, AudienceUpload.stored_path)
        .where(and_(AudienceUpload.purged_at.is_(None), AudienceUpload.created_at <= cutoff, ~still_needed))
        .order_by(AudienceUpload.id)
        .limit(BATCH)
    )
    return [(row[0], row[1]) for row in session.execute(query).all()]


def purge_expired_uploads(*, session: Session, now: datetime | None = None) -> list[int]:
    """Delete the files past their retention; returns the upload ids purged (committed one by one, so a
    crash midway leaves each file either present and unmarked or deleted and marked)."""
    now = now or utcnow()
    purged = []
    for upload_id, stored_path in expired_upload_ids(session, now):
        marked = session.execute(
            update(AudienceUpload)
            .where(AudienceUpload.id == upload_id, AudienceUpload.purged_at.is_(None))
            .values(purged_at=now)
        ).rowcount
        if not marked:
            continue  # another worker's tick took it
        # Only a file in our own upload folder is ever deleted: the stored path is data, not an instruction.
        uploads.discard(stored_path, uploads.AUDIENCE_PURPOSE)
        audit.record(
            session=session,
            actor=None,
            action="audience_upload.purged",
            target_type="audience_upload",
            target_id=upload_id,
            detail={"retention_days": get_settings().upload_retention_days},
        )
        session.commit()
        purged.append(upload_id)
    if purged:
        log.info("retention: deleted %d audience CSV file(s) past %s days", len(purged), retention().days)
    return purged


def sweep_scratch(now_s: float | None = None) -> int:
    """Remove the parallel CSV check's scratch folders left by a process that died mid-check."""
    root = Path(get_settings().upload_dir) / uploads.SCRATCH_PURPOSE
    if not root.is_dir():
        return 0
    cutoff, removed = (now_s or time.time()) - SCRATCH_STALE_S, 0
    for folder in root.iterdir():
        try:
            if folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        except OSError:
            continue
    return removed
