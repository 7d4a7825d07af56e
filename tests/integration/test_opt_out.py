"""Opt-out keywords from inbound WhatsApp messages, and replies counted towards a campaign."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlmodel import select

from app.models import AuditLog, Campaign, CampaignRecipient, Channel, Contact, ContactIdentity, InboundMessage
from app.services.inbound import opt_out
from app.whatsapp.webhooks import InboundMessage as Parsed


def inbound(text: str, wamid: str, sender: str = "33612345678", context: str | None = None, kind: str = "text"):
    return Parsed(
        message_id=wamid,
        from_wa_id=sender,
        timestamp=datetime(2026, 1, 1, tzinfo=UTC),
        kind=kind,
        text=text,
        context_message_id=context,
    )


@pytest.mark.parametrize(
    "text", ["STOP", "stop", "  Stop. ", "UNSUBSCRIBE", "arrêt", "ARRET!", "Stopp", "baja", "S T O P"]
)
def test_opt_out_keywords_are_case_and_space_insensitive(text):
    assert opt_out.is_opt_out(text)


@pytest.mark.parametrize("text", ["", "stop sending me the wrong size", "nonstop", "hello", "STOP?"])
def test_ordinary_messages_are_not_opt_outs(text):
    assert not opt_out.is_opt_out(text)


def test_configured_keywords_add_to_the_defaults(monkeypatch):
    monkeypatch.setenv(opt_out.KEYWORDS_ENV, "halt, Abmelden")
    assert opt_out.is_opt_out("abmelden") and opt_out.is_opt_out("HALT") and opt_out.is_opt_out("STOP")


def test_stop_from_an_unknown_number_creates_a_suppressed_contact(session):
    outcome = opt_out.record_inbound(
        session=session, message=inbound("Baja", "wamid.a", "34600111222"), channel_id=None
    )
    session.commit()
    assert outcome.unsubscribed and outcome.address == "+34600111222"
    identity = session.exec(select(ContactIdentity)).one()
    assert (identity.address, identity.subscribed, identity.channel_type) == ("+34600111222", False, "whatsapp")
    assert session.get(Contact, identity.contact_id) is not None
    audit = session.exec(select(AuditLog).where(AuditLog.action == "contact.unsubscribed")).one()
    assert audit.detail["contact_created"] is True and audit.actor_email == "whatsapp"


def test_other_messages_are_stored_and_change_no_subscription(session):
    contact = Contact(first_name="Ana")
    session.add(contact)
    session.flush()
    session.add(ContactIdentity(contact_id=contact.id, channel_type="whatsapp", address="+33612345678"))
    session.commit()
    outcome = opt_out.record_inbound(
        session=session, message=inbound("Is the sale on Sunday too?", "wamid.b"), channel_id=None
    )
    session.commit()
    assert outcome.stored and not outcome.unsubscribed
    assert session.exec(select(ContactIdentity)).one().subscribed is True
    assert session.exec(select(InboundMessage)).one().text == "Is the sale on Sunday too?"


def test_replies_to_a_campaign_message_count_once_per_recipient(session):
    ours, other = Channel(name="Ours", kind="sandbox"), Channel(name="Other", kind="sandbox")
    session.add_all([ours, other])
    session.flush()
    campaign = Campaign(name="Spring", status="sent", channel_id=ours.id)
    session.add(campaign)
    session.flush()
    session.add(
        CampaignRecipient(campaign_id=campaign.id, address="+33612345678", status="read", message_id="wamid.campaign.1")
    )
    session.commit()
    for wamid in ("wamid.r1", "wamid.r2", "wamid.r1"):  # two replies, one redelivered
        opt_out.record_inbound(
            session=session, message=inbound("Nice!", wamid, context="wamid.campaign.1"), channel_id=ours.id
        )
    opt_out.record_inbound(
        session=session, message=inbound("Hi", "wamid.r3", context="wamid.unrelated"), channel_id=ours.id
    )
    session.commit()
    session.refresh(campaign)
    assert campaign.replied_count == 1
    assert len(session.exec(select(InboundMessage)).all()) == 3


def test_a_reply_through_another_channel_does_not_count_for_the_campaign(session):
    ours, other = Channel(name="Ours", kind="sandbox"), Channel(name="Other", kind="sandbox")
    session.add_all([ours, other])
    session.flush()
    campaign = Campaign(name="Spring", status="sent", channel_id=ours.id)
    session.add(campaign)
    session.flush()
    session.add(
        CampaignRecipient(campaign_id=campaign.id, address="+33612345679", status="read", message_id="wamid.campaign.2")
    )
    session.commit()
    outcome = opt_out.record_inbound(
        session=session, message=inbound("Hi", "wamid.x1", context="wamid.campaign.2"), channel_id=other.id
    )
    session.commit()
    session.refresh(campaign)
    assert outcome.replied_campaign_id is None and campaign.replied_count == 0
