"""All Campaigns: the paged, searchable list with each campaign's live progress.

Sorted on the server by any column (SORT_KEYS; ties broken by id so pages never overlap), filtered by
status and by a date range. The date of a campaign is the one its "Scheduled or sent" column shows: when
it started sending, else when it is scheduled, else (a draft) when it was created; the range is inclusive,
in UTC calendar days. Bad input (an unknown column or status, a date that is not YYYY-MM-DD, a range that
ends before it starts) raises ListingError with a message to show, and nothing is read.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import case, func
from sqlmodel import Session, select

from app.domain import permissions as perm
from app.domain.campaign_status import CAMPAIGN_STATUSES, STATUS_LABELS
from app.models import Campaign, Channel, User
from app.services.access import require
from app.services.campaigns.results import progress
from app.services.paging import Page, fmt_time, paging

# The date a campaign is filed under (see the module docstring).
CAMPAIGN_DATE = func.coalesce(Campaign.started_at, Campaign.scheduled_at, Campaign.created_at)
# Column key -> what it sorts by. Status sorts in lifecycle order (Draft ... Cancelled), not alphabetically.
SORT_KEYS = {
    "name": func.lower(Campaign.name),
    "status": case(
        {s: i for i, s in enumerate(CAMPAIGN_STATUSES)}, value=Campaign.status, else_=len(CAMPAIGN_STATUSES)
    ),
    "channel": func.lower(func.coalesce(Channel.name, "")),
    "recipients": Campaign.total_recipients,
    "progress": case(
        (
            Campaign.total_recipients > 0,
            (Campaign.total_recipients - Campaign.queued_count) * 1000 / Campaign.total_recipients,
        ),
        else_=0,
    ),
    "when": CAMPAIGN_DATE,
    "created_by": func.lower(func.coalesce(User.email, "")),
    "created": Campaign.created_at,
}
DEFAULT_SORT, DEFAULT_DIRECTION = "created", "desc"
DIRECTIONS = ("asc", "desc")


class ListingError(ValueError):
    """Bad sort, filter or date input; the message is safe to show."""


def parse_day(value: str, what: str) -> date | None:
    text = str(value or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10]) if len(text) == 10 else date.fromisoformat(text)
    except ValueError:
        raise ListingError(f"The {what} date must be a date like 2026-12-31, not {text[:20]!r}.") from None


def _filters(search: str, status: str, date_from: str, date_to: str) -> list:
    conds = []
    if search.strip():
        conds.append(Campaign.name.ilike(f"%{search.strip()}%"))
    if status:
        if status not in CAMPAIGN_STATUSES:
            raise ListingError(f"Unknown status {status[:20]!r}: choose one of the statuses in the list.")
        conds.append(Campaign.status == status)
    start, end = parse_day(date_from, "From"), parse_day(date_to, "To")
    if start and end and end < start:
        raise ListingError("The To date is before the From date: choose a range that ends after it starts.")
    if start:
        conds.append(datetime.combine(start, time.min, tzinfo=UTC) <= CAMPAIGN_DATE)
    if end:
        conds.append(datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC) > CAMPAIGN_DATE)
    return conds


def campaigns_page(
    *,
    session: Session,
    actor: User,
    search: str = "",
    status: str = "",
    page: int = 1,
    page_size: int = 25,
    sort: str = DEFAULT_SORT,
    direction: str = DEFAULT_DIRECTION,
    date_from: str = "",
    date_to: str = "",
) -> Page:
    require(session, actor, perm.CAMPAIGNS_VIEW)
    if sort not in SORT_KEYS:
        raise ListingError(f"Campaigns cannot be sorted by {str(sort)[:20]!r}.")
    if direction not in DIRECTIONS:
        raise ListingError("Sort ascending or descending.")
    conds = _filters(search, status, date_from, date_to)
    page, page_size = paging(page, page_size)
    query = (
        select(Campaign, Channel.name, User.email)
        .join(Channel, Campaign.channel_id == Channel.id, isouter=True)
        .join(User, Campaign.created_by_id == User.id, isouter=True)
    )
    count = select(func.count()).select_from(Campaign)
    for cond in conds:
        query, count = query.where(cond), count.where(cond)
    total = session.exec(count).one()
    key = SORT_KEYS[sort]
    order = (key.desc(), Campaign.id.desc()) if direction == "desc" else (key.asc(), Campaign.id.asc())
    rows = session.exec(query.order_by(*order).offset((page - 1) * page_size).limit(page_size)).all()
    out = []
    for c, channel, email in rows:
        funnel = progress(c)  # sent includes delivered and read; delivered includes read
        out.append(
            {
                "id": c.id,
                "name": c.name,
                "status": c.status,
                "status_label": STATUS_LABELS.get(c.status, c.status),
                "channel": channel or "",
                "recipients": c.total_recipients,
                "sent": funnel["sent"],
                "delivered": funnel["delivered"],
                "read": funnel["read"],
                "failed": funnel["failed"],
                "progress": funnel["progress"],
                # The date the list sorts and filters by (CAMPAIGN_DATE): a draft shows when it was created.
                "when": fmt_time(c.started_at or c.scheduled_at) or f"created {fmt_time(c.created_at)}",
                "created_by": email or "",
            }
        )
    return Page(out, total, page, page_size)
