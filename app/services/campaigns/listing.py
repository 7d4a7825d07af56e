"""All Campaigns: the paged, searchable list with each campaign's live progress."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, select

from app.domain import permissions as perm
from app.domain.campaign_status import STATUS_LABELS
from app.models import Campaign, Channel, User
from app.services.access import require
from app.services.campaigns.results import progress
from app.services.paging import Page, fmt_time, paging


def campaigns_page(
    *, session: Session, actor: User, search: str = "", status: str = "", page: int = 1, page_size: int = 25
) -> Page:
    require(session, actor, perm.CAMPAIGNS_VIEW)
    page, page_size = paging(page, page_size)
    query = (
        select(Campaign, Channel.name, User.email)
        .join(Channel, Campaign.channel_id == Channel.id, isouter=True)
        .join(User, Campaign.created_by_id == User.id, isouter=True)
    )
    count = select(func.count()).select_from(Campaign)
    if search.strip():
        cond = Campaign.name.ilike(f"%{search.strip()}%")
        query, count = query.where(cond), count.where(cond)
    if status:
        query, count = query.where(Campaign.status == status), count.where(Campaign.status == status)
    total = session.exec(count).one()
    rows = session.exec(
        query.order_by(Campaign.created_at.desc(), Campaign.id.desc()).offset((page - 1) * page_size).limit(page_size)
    ).all()
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
                "when": fmt_time(c.started_at or c.scheduled_at),
                "created_by": email or "",
            }
        )
    return Page(out, total, page, page_size)
