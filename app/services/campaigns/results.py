"""Read models for a campaign's results: the analytics cards, the per-recipient table, the CSV export,
and whether anything is live (so pages know to keep polling).

Counts come from the campaign's denormalised counters (kept by campaign_progress from the recipient
rows), so polling them every second stays cheap on a 500,000-recipient campaign. The counters are
per *current* status; the cards show the funnel a marketer expects: "delivered" includes the read
ones, "sent" includes delivered and read.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import timedelta

from sqlalchemy import func, or_, select
from sqlmodel import Session

from app.domain import permissions as perm
from app.domain.campaign_status import (
    DRAFT,
    PAUSED,
    RECIPIENT_STATUS_LABELS,
    SCHEDULED,
    SENDING,
    STATUS_LABELS,
)
from app.models import Campaign, CampaignRecipient, Channel, Template
from app.services.access import get_or_raise, require
from app.services.audiences.csv_reader import export_safe
from app.services.paging import Page, fmt_time, paging
from app.services.sending.quota import waiting_for_quota
from app.timeutil import utcnow

LIVE_STATUSES = (SENDING, SCHEDULED)
# Delivery and read receipts keep arriving after the last message went out: keep pages live that long.
RECENT_ACTIVITY = timedelta(minutes=2)
RECIPIENT_FILTERS = tuple(RECIPIENT_STATUS_LABELS)  # queued, sending, sent, delivered, read, failed, ...
EXPORT_COLUMNS = [
    "number",
    "status",
    "wamid",
    "error_code",
    "error_title",
    "sent_at",
    "delivered_at",
    "read_at",
    "failed_at",
    "variables",
]


class CampaignNotFound(LookupError):
    MESSAGE = "This campaign does not exist (or was deleted)."

    def __init__(self, message: str = MESSAGE) -> None:
        super().__init__(message)


def _pct(part: int, whole: int) -> str:
    return f"{part * 100 / whole:.1f}%" if whole else "—"


def progress(c: Campaign) -> dict:
    """The funnel numbers of one campaign from its counters."""
    read = c.read_count
    delivered = c.delivered_count + read
    sent = c.sent_count + delivered
    total = c.total_recipients
    done = total - c.queued_count
    return {
        "total": total,
        "sent": sent,
        "delivered": delivered,
        "read": read,
        "failed": c.failed_count,
        "unknown": c.unknown_count,
        "limited": c.limited_count,  # "limited by WhatsApp" (131049): not a failure; a later campaign may retry
        "replied": c.replied_count,
        "queued": c.queued_count,
        "progress": int(done * 100 / total) if total else 0,
        "sent_rate": _pct(sent, total),
        "delivered_rate": _pct(delivered, total),
        "read_rate": _pct(read, total),
        "failed_rate": _pct(c.failed_count, total),
        "unknown_rate": _pct(c.unknown_count, total),
        "limited_rate": _pct(c.limited_count, total),
        "replied_rate": _pct(c.replied_count, total),
        "waiting_note": f"{c.queued_count:,} waiting to send" if c.queued_count else "none waiting",
    }


def is_live(c: Campaign) -> bool:
    return c.status in LIVE_STATUSES or (
        c.status != DRAFT and c.updated_at is not None and utcnow() - c.updated_at < RECENT_ACTIVITY
    )


def anything_live(*, session: Session, actor) -> bool:
    """Whether some campaign is sending, scheduled, or still receiving statuses: pages keep polling."""
    require(session, actor, perm.CAMPAIGNS_VIEW)
    cond = or_(
        Campaign.status.in_(LIVE_STATUSES),
        (Campaign.status != DRAFT) & (Campaign.updated_at > utcnow() - RECENT_ACTIVITY),
    )
    return session.execute(select(Campaign.id).where(cond).limit(1)).first() is not None


def _campaign(session: Session, campaign_id) -> Campaign:
    return get_or_raise(session, Campaign, campaign_id, CampaignNotFound, CampaignNotFound.MESSAGE)


def campaign_summary(*, session: Session, actor, campaign_id) -> dict:
    require(session, actor, perm.CAMPAIGNS_VIEW)
    c = _campaign(session, campaign_id)
    channel = session.get(Channel, c.channel_id) if c.channel_id else None
    template = session.get(Template, c.template_id) if c.template_id else None
    return {
        "id": c.id,
        "name": c.name,
        "status": c.status,
        "status_label": STATUS_LABELS.get(c.status, c.status),
        "channel": channel.name if channel else "",
        "template": template.name if template else "",
        "started": fmt_time(c.started_at),
        "finished": fmt_time(c.finished_at),
        "scheduled": fmt_time(c.scheduled_at),
        "pause_reason": c.pause_reason,
        "live": is_live(c),
        **progress(c),
        "quota_note": _quota_note(session, c),
    }


def _quota_note(session: Session, c: Campaign) -> str:
    """The live "N waiting for quota: the next go out at ..." while rows wait for Meta's daily messaging limit."""
    if c.status not in (SENDING, PAUSED) or not c.queued_count:
        return ""
    waiting, next_at = waiting_for_quota(session, c.id)
    if not waiting:
        return ""
    when = f"{next_at:%Y-%m-%d %H:%M:%S} UTC" if next_at else "soon"
    return f"{waiting:,} waiting for quota (daily messaging limit): the next go out at {when}"


def _recipient_query(campaign_id: int, status: str, search: str):
    query = select(CampaignRecipient).where(CampaignRecipient.campaign_id == campaign_id)
    if status:
        query = query.where(CampaignRecipient.status == status)
    digits = "".join(ch for ch in search if ch.isdigit())
    if digits:
        query = query.where(CampaignRecipient.address.like(f"%{digits}%"))
    return query


def recipients_page(
    *, session: Session, actor, campaign_id, status: str = "", search: str = "", page: int = 1, page_size: int = 50
) -> Page:
    require(session, actor, perm.CAMPAIGNS_VIEW)
    c = _campaign(session, campaign_id)
    if status and status not in RECIPIENT_FILTERS:
        raise ValueError(f"Unknown recipient status {status!r}.")
    page, page_size = paging(page, page_size)
    query = _recipient_query(c.id, status, search)
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = (
        session.execute(query.order_by(CampaignRecipient.id).offset((page - 1) * page_size).limit(page_size))
        .scalars()
        .all()
    )
    return Page(
        [
            {
                "id": r.id,
                "number": r.address,
                "status": r.status,
                "status_label": RECIPIENT_STATUS_LABELS.get(r.status, r.status.capitalize()),
                "wamid": r.message_id or "",
                "error_code": "" if r.error_code is None else r.error_code,
                "error_title": r.error_title,
                "updated": fmt_time(r.read_at or r.delivered_at or r.sent_at or r.failed_at or r.updated_at),
            }
            for r in rows
        ],
        total,
        page,
        page_size,
    )


def _iso(dt) -> str:
    return dt.isoformat() if dt else ""


def export_filename(*, session: Session, actor, campaign_id) -> str:
    require(session, actor, perm.CAMPAIGNS_VIEW)
    c = _campaign(session, campaign_id)
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in c.name)[:60].strip("-") or "campaign"
    return f"hubcast-{c.id}-{safe}-results.csv"


def export_csv(*, session: Session, actor, campaign_id, chunk_rows: int = 2000) -> Iterator[str]:
    """The results as CSV text chunks (streamed: never the whole file in memory)."""
    require(session, actor, perm.CAMPAIGNS_VIEW)
    c = _campaign(session, campaign_id)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    last_id = 0
    while True:
        batch = (
            session.execute(
                select(CampaignRecipient)
                .where(CampaignRecipient.campaign_id == c.id, CampaignRecipient.id > last_id)
                .order_by(CampaignRecipient.id)
                .limit(chunk_rows)
            )
            .scalars()
            .all()
        )
        for r in batch:
            variables = "; ".join(f"{k}={v}" for k, v in sorted((r.variables or {}).items()))
            writer.writerow(
                [
                    export_safe(v)
                    for v in (
                        r.address,
                        r.status,
                        r.message_id or "",
                        "" if r.error_code is None else r.error_code,
                        r.error_title,
                        _iso(r.sent_at),
                        _iso(r.delivered_at),
                        _iso(r.read_at),
                        _iso(r.failed_at),
                        variables,
                    )
                ]
            )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if len(batch) < chunk_rows:
            return
        last_id = batch[-1].id
