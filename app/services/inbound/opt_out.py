"""Inbound WhatsApp messages: record them, honour opt-out keywords, count replies to campaigns.

A contact who writes one of the opt-out keywords (STOP, UNSUBSCRIBE, ARRET, ARRÊT, STOPP, BAJA, plus
the comma-separated `HUBCAST_OPT_OUT_KEYWORDS`) alone in a message — case, spaces and a trailing
"." or "!" do not matter — is unsubscribed on WhatsApp, and the audit log says when and why. A number
that is not a contact yet gets a contact with an unsubscribed identity, so no later audience (a CSV
file included) can message it again without someone deliberately re-subscribing it.

Every message is stored once (unique wamid; Meta's redeliveries are ignored, so side effects happen
once). A reply carrying the context of a campaign message counts once per recipient in the
campaign's `replied_count`, and only for a campaign on the channel the reply came through.

Only messages through a number owned by a channel whose app secret signed the webhook get here
(`webhook_ingest.store_events` refuses the others, issue 13). Consent is kept per channel *type*
(`ContactIdentity`), so a STOP to any of our WhatsApp numbers ends WhatsApp messages from all of them:
the person asked us to stop, and guessing which of our numbers they meant would be the unsafe side.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlmodel import Session

from app.models import Campaign, CampaignRecipient, Contact, ContactIdentity, InboundMessage
from app.services.accounts import audit
from app.services.inbound.inserts import insert_ignoring_duplicates
from app.settings import OPT_OUT_KEYWORDS_ENV, extra_opt_out_keywords
from app.timeutil import utcnow
from app.whatsapp.webhooks import InboundMessage as ParsedInbound

DEFAULT_KEYWORDS = ("STOP", "UNSUBSCRIBE", "ARRET", "ARRÊT", "STOPP", "BAJA")
# HUBCAST_OPT_OUT_KEYWORDS adds words (read by app.settings when a message arrives, not cached: tiny,
# parsed per inbound message, which is rare).
KEYWORDS_ENV = OPT_OUT_KEYWORDS_ENV
WHATSAPP = "whatsapp"
_NOISE = re.compile(r"[\s.!]+")


@dataclass(frozen=True)
class InboundOutcome:
    stored: bool  # False: a redelivery of a message already recorded
    address: str
    unsubscribed: bool = False
    replied_campaign_id: int | None = None


def normalise(text: str) -> str:
    return _NOISE.sub("", text or "").casefold()


def keywords() -> frozenset[str]:
    extra = extra_opt_out_keywords()
    return frozenset(normalise(k) for k in (*DEFAULT_KEYWORDS, *extra))


def is_opt_out(text: str) -> bool:
    value = normalise(text)
    return bool(value) and value in keywords()


def whatsapp_address(wa_id: str) -> str:
    digits = re.sub(r"\D", "", wa_id or "")
    return f"+{digits}" if digits else ""


def record_inbound(*, session: Session, message: ParsedInbound, channel_id: int | None) -> InboundOutcome:
    """Store one inbound message and apply its effects (caller commits)."""
    address = whatsapp_address(message.from_wa_id)
    context = (message.context_message_id or None) and str(message.context_message_id)[:128]
    table = InboundMessage.__table__
    # RETURNING says whether this row is new (rowcount is unreliable for ON CONFLICT across drivers).
    inserted = session.execute(
        insert_ignoring_duplicates(session, table).returning(table.c.id),
        {
            "channel_id": channel_id,
            "message_id": message.message_id[:128],
            "from_address": address[:32],
            "kind": (message.kind or "text")[:16],
            "text": message.text or "",
            "context_message_id": context,
            "payload": (message.payload or "")[:256],  # a quick-reply button's payload: counted per button
            "received_at": message.timestamp or utcnow(),
        },
    ).first()
    if inserted is None:
        return InboundOutcome(stored=False, address=address)
    unsubscribed = bool(address) and message.kind in ("text", "button", "interactive") and is_opt_out(message.text)
    if unsubscribed:
        unsubscribe(
            session=session,
            address=address,
            keyword=message.text.strip(),
            message_id=message.message_id,
            channel_id=channel_id,
        )
    replied = _count_reply(session, context, message.message_id, channel_id) if context and channel_id else None
    if replied is not None:
        # The reply names its campaign, so the home dashboard counts replies as the campaign page does (0015).
        session.execute(update(InboundMessage).where(InboundMessage.id == inserted[0]).values(campaign_id=replied))
    return InboundOutcome(stored=True, address=address, unsubscribed=unsubscribed, replied_campaign_id=replied)


def unsubscribe(
    *, session: Session, address: str, keyword: str, message_id: str, channel_id: int | None
) -> ContactIdentity:
    now = utcnow()
    identity = (
        session.execute(
            select(ContactIdentity).where(ContactIdentity.channel_type == WHATSAPP, ContactIdentity.address == address)
        )
        .scalars()
        .first()
    )
    created = identity is None
    if created:
        contact = Contact()
        session.add(contact)
        session.flush()
        identity = ContactIdentity(contact_id=contact.id, channel_type=WHATSAPP, address=address)
    was_subscribed = created or identity.subscribed
    identity.subscribed = False
    identity.subscription_changed_at = now
    session.add(identity)
    session.flush()
    audit.record(
        session=session,
        actor=None,
        actor_email="whatsapp",
        action="contact.unsubscribed",
        target_type="contact_identity",
        target_id=identity.id,
        detail={
            "address": address,
            "keyword": keyword[:40],
            "message_id": message_id[:128],
            "channel_id": channel_id,
            "contact_created": created,
            "was_subscribed": was_subscribed,
        },
    )
    return identity


def _count_reply(session: Session, context_id: str, message_id: str, channel_id: int) -> int | None:
    """+1 replied for the campaign of the message replied to, on the first reply from that recipient
    (only a campaign on the channel the reply came through)."""
    campaign_id = (
        session.execute(
            select(CampaignRecipient.campaign_id)
            .join(Campaign, Campaign.id == CampaignRecipient.campaign_id)
            .where(CampaignRecipient.message_id == context_id, Campaign.channel_id == channel_id)
        )
        .scalars()
        .first()
    )
    if campaign_id is None:
        return None
    earlier = session.execute(
        select(InboundMessage.id)
        .where(InboundMessage.context_message_id == context_id, InboundMessage.message_id != message_id[:128])
        .limit(1)
    ).first()
    if earlier is None:
        session.execute(
            update(Campaign).where(Campaign.id == campaign_id).values(replied_count=Campaign.replied_count + 1)
        )
    return campaign_id
