"""Replies to a campaign (issue 15): inbound messages whose `context.id` is a wamid this campaign sent.

A reply counts only when it came through the campaign's own channel (as `replied_count` does in
`app.services.inbound.opt_out`): a wamid is guessable, a channel's signature is not. Matching joins
`inbound_messages.context_message_id` (index `ix_inbound_context`, migration 0010) with the recipients'
`message_id` (indexed), so a page of replies and the per-button counts are two small queries.
"""

from __future__ import annotations

from sqlalchemy import and_, func, select
from sqlmodel import Session

from app.domain import permissions as perm
from app.models import Campaign, CampaignRecipient, InboundMessage
from app.services.access import require
from app.services.campaigns.results import CampaignNotFound
from app.services.paging import Page, fmt_time, paging

FIRST_WORDS = 12
BUTTON_KINDS = ("button", "interactive")


def _campaign(session: Session, campaign_id) -> Campaign:
    try:
        campaign = session.get(Campaign, int(campaign_id))
    except (TypeError, ValueError):
        campaign = None
    if campaign is None:
        raise CampaignNotFound()
    return campaign


def reply_join(campaign: Campaign):
    """The ON clause that ties a reply to a recipient of `campaign` (same wamid, same channel)."""
    return and_(
        InboundMessage.context_message_id == CampaignRecipient.message_id,
        CampaignRecipient.campaign_id == campaign.id,
        InboundMessage.channel_id == campaign.channel_id,
    )


def first_words(text: str, words: int = FIRST_WORDS) -> str:
    parts = (text or "").split()
    return " ".join(parts[:words]) + (" …" if len(parts) > words else "")


def replies_page(*, session: Session, actor, campaign_id, page: int = 1, page_size: int = 20) -> Page:
    """Replies newest first: number, first words (or the button pressed), time."""
    require(session, actor, perm.CAMPAIGNS_VIEW)
    c = _campaign(session, campaign_id)
    page, page_size = paging(page, page_size)
    if c.channel_id is None:
        return Page([], 0, page, page_size)
    base = select(InboundMessage, CampaignRecipient.address).join(CampaignRecipient, reply_join(c))
    total = session.execute(select(func.count()).select_from(base.subquery())).scalar_one()
    rows = session.execute(
        base.order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    return Page(
        [
            {
                "id": m.id,
                "number": address,
                "kind": "button" if m.kind in BUTTON_KINDS else m.kind,
                "text": first_words(m.text) if m.text else f"({m.kind})",
                "payload": m.payload,
                "time": fmt_time(m.received_at),
            }
            for m, address in rows
        ],
        total,
        page,
        page_size,
    )


def button_counts(*, session: Session, actor, campaign_id) -> list[dict]:
    """For quick-reply templates: how many recipients pressed each button (by payload), most first.
    A recipient who pressed the same button twice counts once."""
    require(session, actor, perm.CAMPAIGNS_VIEW)
    c = _campaign(session, campaign_id)
    if c.channel_id is None:
        return []
    people = func.count(func.distinct(CampaignRecipient.id)).label("people")
    rows = session.execute(
        select(InboundMessage.payload, func.max(InboundMessage.text), people)
        .join(CampaignRecipient, reply_join(c))
        .where(InboundMessage.kind.in_(BUTTON_KINDS), InboundMessage.payload != "")
        .group_by(InboundMessage.payload)
        .order_by(people.desc(), InboundMessage.payload)
    ).all()
    return [{"payload": payload, "label": label or payload, "recipients": int(n)} for payload, label, n in rows]
