"""Read models for the pages: campaigns, contacts, lists, segments, templates, channels.

Each function checks the actor's capability, queries with paging on the server where a table can
grow large, and returns plain dicts ready for display (never secrets).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, or_
from sqlmodel import Session, select

from app.domain import permissions as perm
from app.domain.campaign_status import STATUS_LABELS
from app.models import (
    Campaign, Channel, Contact, ContactIdentity, ContactList, ListMembership, Segment, Template, User,
)

MAX_PAGE_SIZE = 200


@dataclass(frozen=True)
class Page:
    rows: list[dict]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


def _paging(page: int, page_size: int) -> tuple[int, int]:
    page_size = max(1, min(int(page_size), MAX_PAGE_SIZE))
    return max(1, int(page)), page_size


def _fmt(dt) -> str:
    return dt.strftime("%Y-%m-%d %H:%M UTC") if dt else ""


def campaigns_page(*, session: Session, actor: User, search: str = "", status: str = "", page: int = 1,
                   page_size: int = 25) -> Page:
    perm.require(actor.role, perm.CAMPAIGNS_VIEW)
    page, page_size = _paging(page, page_size)
    query = select(Campaign, Channel.name, User.email).join(Channel, Campaign.channel_id == Channel.id, isouter=True) \
        .join(User, Campaign.created_by_id == User.id, isouter=True)
    count = select(func.count()).select_from(Campaign)
    if search.strip():
        cond = Campaign.name.ilike(f"%{search.strip()}%")
        query, count = query.where(cond), count.where(cond)
    if status:
        query, count = query.where(Campaign.status == status), count.where(Campaign.status == status)
    total = session.exec(count).one()
    rows = session.exec(query.order_by(Campaign.created_at.desc(), Campaign.id.desc())
                        .offset((page - 1) * page_size).limit(page_size)).all()
    return Page([
        {
            "id": c.id, "name": c.name, "status": c.status, "status_label": STATUS_LABELS.get(c.status, c.status),
            "channel": channel or "", "recipients": c.total_recipients, "sent": c.sent_count,
            "delivered": c.delivered_count, "read": c.read_count, "failed": c.failed_count,
            "when": _fmt(c.started_at or c.scheduled_at), "created_by": email or "",
        }
        for c, channel, email in rows
    ], total, page, page_size)


def contacts_page(*, session: Session, actor: User, search: str = "", page: int = 1, page_size: int = 50) -> Page:
    perm.require(actor.role, perm.AUDIENCES_VIEW)
    page, page_size = _paging(page, page_size)
    query = select(Contact)
    count = select(func.count()).select_from(Contact)
    term = search.strip()
    if term:
        like = f"%{term}%"
        matching_ids = select(ContactIdentity.contact_id).where(ContactIdentity.address.like(like))
        cond = or_(Contact.first_name.ilike(like), Contact.last_name.ilike(like), Contact.id.in_(matching_ids))
        query, count = query.where(cond), count.where(cond)
    total = session.exec(count).one()
    contacts = session.exec(query.order_by(Contact.last_name, Contact.first_name, Contact.id)
                            .offset((page - 1) * page_size).limit(page_size)).all()
    ids = [c.id for c in contacts]
    identities: dict[int, list[ContactIdentity]] = {}
    if ids:
        for ident in session.exec(select(ContactIdentity).where(ContactIdentity.contact_id.in_(ids))).all():
            identities.setdefault(ident.contact_id, []).append(ident)
    rows = []
    for c in contacts:
        idents = identities.get(c.id, [])
        wa = next((i for i in idents if i.channel_type == "whatsapp"), None)
        rows.append({
            "id": c.id, "name": f"{c.first_name} {c.last_name}".strip(), "country": c.country, "city": c.city,
            "whatsapp": wa.address if wa else "", "subscribed": bool(wa and wa.subscribed),
            "channels": ", ".join(sorted({i.channel_type for i in idents})),
        })
    return Page(rows, total, page, page_size)


def lists_overview(*, session: Session, actor: User) -> list[dict]:
    perm.require(actor.role, perm.AUDIENCES_VIEW)
    members = select(ListMembership.list_id, func.count().label("n")).group_by(ListMembership.list_id).subquery()
    sources = select(ListMembership.list_id, func.min(ListMembership.source).label("src")) \
        .group_by(ListMembership.list_id).subquery()
    rows = session.exec(
        select(ContactList, members.c.n, sources.c.src)
        .join(members, members.c.list_id == ContactList.id, isouter=True)
        .join(sources, sources.c.list_id == ContactList.id, isouter=True)
        .order_by(ContactList.name)
    ).all()
    return [{"id": cl.id, "name": cl.name, "description": cl.description, "members": n or 0,
             "source": src or "manual", "created": _fmt(cl.created_at)} for cl, n, src in rows]


def segments_overview(*, session: Session, actor: User) -> list[dict]:
    perm.require(actor.role, perm.AUDIENCES_VIEW)
    return [{"id": s.id, "name": s.name, "description": s.description, "match": s.match,
             "rules": "; ".join(f"{r.get('field')} {r.get('op')} {r.get('value', '')}".strip() for r in s.rules),
             "updated": _fmt(s.updated_at)}
            for s in session.exec(select(Segment).order_by(Segment.name)).all()]


def templates_overview(*, session: Session, actor: User) -> list[dict]:
    perm.require(actor.role, perm.TEMPLATES_VIEW)
    rows = session.exec(select(Template, Channel.name).join(Channel, Template.channel_id == Channel.id)
                        .order_by(Template.name, Template.language)).all()
    return [{"id": t.id, "channel": ch, "name": t.name, "language": t.language, "category": t.category,
             "status": t.status, "parameter_format": t.parameter_format} for t, ch in rows]


def channels_overview(*, session: Session, actor: User) -> list[dict]:
    """Channel facts safe to show: secrets appear only as whether they are set."""
    perm.require(actor.role, perm.CHANNELS_VIEW)
    return [{"id": c.id, "name": c.name, "kind": "Sandbox" if c.kind == "sandbox" else "WhatsApp Cloud API",
             "phone": c.display_phone_number, "phone_number_id": c.phone_number_id, "status": c.status,
             "mps": c.messages_per_second, "token_set": bool(c.access_token), "secret_set": bool(c.app_secret),
             "checked": _fmt(c.last_checked_at)}
            for c in session.exec(select(Channel).order_by(Channel.name)).all()]
