"""Issue 12 point 3 (which channel may say what): Meta's template, account and user_preferences webhooks apply
only to the channel whose app secret signed them; posted twice, they change nothing more. In-process route,
real database."""

from __future__ import annotations

from sqlmodel import Session, select

from app.db import get_engine
from app.models import AuditLog, Campaign, Channel, ContactIdentity, Template
from tests.support.webhook_payloads import post_signed

A_SECRET, B_SECRET = "account-a-app-secret-0123", "account-b-app-secret-4567"


def _channel(session, name: str, pnid: str, waba: str, secret: str) -> Channel:
    channel = Channel(
        name=name,
        kind="whatsapp_cloud",
        phone_number_id=pnid,
        business_account_id=waba,
        app_secret=secret,
        verify_token="v-" + name,
        status="connected",
    )
    session.add(channel)
    session.commit()
    return channel


def _change(waba: str, field: str, value: dict) -> dict:
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": waba, "changes": [{"field": field, "value": value}]}],
    }


PAUSED = {
    "event": "PAUSED",
    "message_template_id": 900,
    "message_template_name": "order_update",
    "message_template_language": "en_US",
    "reason": "NONE",
}


def _stop(pnid: str, wa_id: str) -> dict:
    return {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550100000", "phone_number_id": pnid},
        "user_preferences": [{"wa_id": wa_id, "category": "marketing_messages", "value": "stop", "timestamp": 1}],
    }


def test_account_webhooks_apply_only_to_the_signing_channel_and_only_once(session, redis_client, no_background):
    a = _channel(session, "A", "111", "waba-a", A_SECRET)
    b = _channel(session, "B", "222", "waba-b", B_SECRET)
    template = Template(channel_id=b.id, name="order_update", language="en_US", status="APPROVED", external_id="900")
    session.add(template)
    session.commit()
    campaign = Campaign(name="B sending", status="sending", channel_id=b.id, template_id=template.id)
    session.add(campaign)
    identity = ContactIdentity(contact_id=_contact(session), channel_type="whatsapp", address="+33612345678")
    session.add(identity)
    session.commit()

    # Signed by A, about B's account and B's number: refused, nothing changes.
    assert post_signed(_change("waba-b", "message_template_status_update", PAUSED), A_SECRET).status_code == 200
    assert post_signed(_change("waba-b", "user_preferences", _stop("222", "33612345678")), A_SECRET).status_code == 200
    session.expire_all()
    assert session.get(Template, template.id).status == "APPROVED"
    assert session.get(Campaign, campaign.id).status == "sending"
    assert session.get(ContactIdentity, identity.id).subscribed
    assert a.id != b.id

    # Signed by B: applied; posted twice (Meta redelivers), the campaign is paused once.
    for _ in range(2):
        assert post_signed(_change("waba-b", "message_template_status_update", PAUSED), B_SECRET).status_code == 200
        assert (
            post_signed(_change("waba-b", "user_preferences", _stop("222", "33612345678")), B_SECRET).status_code == 200
        )
    session.expire_all()
    assert session.get(Template, template.id).status == "PAUSED"
    paused = session.get(Campaign, campaign.id)
    assert paused.status == "paused" and "WhatsApp paused the template “order_update”" in paused.pause_reason
    assert not session.get(ContactIdentity, identity.id).subscribed
    with Session(get_engine()) as s:
        actions = s.exec(select(AuditLog.action).where(AuditLog.actor_email.in_(("whatsapp", "")))).all()
    assert actions.count("campaign.auto_pause") == 1 and actions.count("contact.unsubscribed") == 1


def _contact(session) -> int:
    from app.models import Contact

    contact = Contact(first_name="Ana")
    session.add(contact)
    session.commit()
    return contact.id
