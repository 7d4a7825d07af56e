"""Replies to a campaign (issue 15): inbound messages whose `context.id` is a wamid this campaign sent.

A reply counts only when it came through the campaign's own channel (as `replied_count` does in
`app.services.inbound.opt_out`): a wamid is guessable, a channel's signature is not. That match is made
once, when the reply is recorded (`opt_out.record_inbound` sets `inbound_messages.campaign_id`, migration
0015, which also filled it for replies stored before), so the page reads a campaign's replies from the
index (campaign_id, received_at) without touching its recipient rows: the count, a page of replies
(newest first, `PAGE_SIZE` a page, offset within that index) and the per-button counts. Only the page's
own rows look up their recipient (by wamid) for the number.
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
PAGE_SIZE = 20
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


def of_campaign(campaign: Campaign):
    """The replies to `campaign`, as matched when they were recorded (the same rule as `reply_join`)."""
    return InboundMessage.campaign_id == campaign.id


def first_words(text: str, words: int = FIRST_WORDS) -> str:
    parts = (text or "").split()
    return " ".join(parts[:words]) + (" …" if len(parts) > words else "")


def replies_page(*, session: Session, actor, campaign_id, page: int = 1, page_size: int = PAGE_SIZE) -> Page:
    """Replies newest first: number, first words (or the button pressed), time. A page past the last one
    shows the last one (the total may have shrunk since the browser asked)."""
    require(session, actor, perm.CAMPAIGNS_VIEW)
    c = _campaign(session, campaign_id)
    page, page_size = paging(page, page_size)
    if c.channel_id is None:
        return Page([], 0, 1, page_size)
    total = session.execute(select(func.count()).select_from(InboundMessage).where(of_campaign(c))).scalar_one()
    page = min(page, max(1, -(-total // page_size)))
    rows = (
        session.execute(
            select(InboundMessage)
            .where(of_campaign(c))
            .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())
            .offset((page - 1) * page_size)
            .limit(page_size)
        )
        .scalars()
        .all()
    )
    # The recipients' numbers, by the wamids answered (index on message_id; the campaign checked here so
    # that no planner walks the campaign's rows instead).
    wamids = {m.context_message_id for m in rows if m.context_message_id}
    numbers = {
        wamid: address
        for wamid, address, cid in session.execute(
            select(CampaignRecipient.message_id, CampaignRecipient.address, CampaignRecipient.campaign_id).where(
                CampaignRecipient.message_id.in_(sorted(wamids))
            )
        ).all()
        if cid == c.id
    }
    return Page(
        [
            {
                "id": m.id,
                "number": numbers.get(m.context_message_id) or m.from_address,
                "kind": "button" if m.kind in BUTTON_KINDS else m.kind,
                "text": first_words(m.text) if m.text else f"({m.kind})",
                "payload": m.payload,
                "time": fmt_time(m.received_at),
            }
            for m in rows
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
    # One wamid per recipient row: distinct wamids answered are distinct recipients.
    people = func.count(func.distinct(InboundMessage.context_message_id)).label("people")
    rows = session.execute(
        select(InboundMessage.payload, func.max(InboundMessage.text), people)
        .where(of_campaign(c), InboundMessage.kind.in_(BUTTON_KINDS), InboundMessage.payload != "")
        .group_by(InboundMessage.payload)
        .order_by(people.desc(), InboundMessage.payload)
    ).all()
    return [{"payload": payload, "label": label or payload, "recipients": int(n)} for payload, label, n in rows]
