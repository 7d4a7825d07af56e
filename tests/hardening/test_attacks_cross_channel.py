"""Issue 13 item 1: webhooks signed with one channel's app secret cannot touch another channel's campaign.

Channel A's secret is the attacker's (a leaked secret, or a second Meta app an admin connected); channel B
runs a Sending campaign. Everything signed by A is posted to the real route (in-process ASGI) and applied:
statuses naming B's phone number id, statuses naming A's own number but B's wamids or B's recipient ids in
the callback data (a `failed` for a still-queued row would stop it being sent), and a STOP from B's
contact naming B's number. Nothing on B may change. Then the same statuses signed by B do apply (the test
is not vacuous), except to the queued row, which was never posted and so cannot have a status.
"""

from __future__ import annotations

from sqlmodel import Session, select

from app.db import get_engine
from app.models import Campaign, CampaignRecipient, Channel, Contact, ContactIdentity, InboundMessage
from tests.support.hardening import record
from tests.support.webhook_payloads import apply_all, body_of, envelope, request, status_item

SECRET_A, PNID_A = "channel-a-app-secret-0001", "100000000000101"
SECRET_B, PNID_B = "channel-b-app-secret-0002", "100000000000202"
CONTACT = "+33612340001"


def _post(payload, secret: str) -> int:
    from app.whatsapp.signature import HEADER, sign

    raw = body_of(payload)
    return request(
        "POST",
        "/webhooks/whatsapp",
        content=raw,
        headers={HEADER: sign(raw, secret), "Content-Type": "application/json"},
    ).status_code


def _snapshot(campaign_id: int) -> dict:
    with Session(get_engine()) as s:
        rows = s.exec(
            select(CampaignRecipient).where(CampaignRecipient.campaign_id == campaign_id).order_by(CampaignRecipient.id)
        ).all()
        identity = s.exec(select(ContactIdentity).where(ContactIdentity.address == CONTACT)).one()
        return {
            "rows": [(r.id, r.status, r.message_id, r.delivered_at, r.failed_at, r.error_code) for r in rows],
            "subscribed": identity.subscribed,
        }


def test_webhooks_signed_by_channel_a_change_nothing_on_channel_b(session, no_background, redis_client):
    a = Channel(name="A", kind="whatsapp_cloud", phone_number_id=PNID_A, app_secret=SECRET_A, status="connected")
    b = Channel(name="B", kind="whatsapp_cloud", phone_number_id=PNID_B, app_secret=SECRET_B, status="connected")
    session.add_all([a, b])
    session.commit()
    campaign = Campaign(name="B's sale", status="sending", channel_id=b.id)
    contact = Contact(first_name="Ana")
    session.add_all([campaign, contact])
    session.commit()
    session.add(ContactIdentity(contact_id=contact.id, channel_type="whatsapp", address=CONTACT, subscribed=True))
    sent = CampaignRecipient(
        campaign_id=campaign.id, address=CONTACT, contact_id=contact.id, status="sent", message_id="wamid.b.sent"
    )
    sending = CampaignRecipient(campaign_id=campaign.id, address="+33612340002", status="sending")
    queued = CampaignRecipient(campaign_id=campaign.id, address="+33612340003", status="queued")
    session.add_all([sent, sending, queued])
    session.commit()
    before = _snapshot(campaign.id)

    stop = {
        "from": CONTACT[1:],
        "id": "wamid.in.forged.stop",
        "timestamp": "1750000000",
        "type": "text",
        "text": {"body": "STOP"},
    }
    forged_statuses = [
        status_item("wamid.b.sent", "failed", error=131026),
        status_item("wamid.forged.1", "delivered", opaque=str(sending.id)),
        status_item("wamid.forged.2", "failed", opaque=str(queued.id), error=131026),
    ]
    forgeries = {
        "statuses and a STOP naming B's number, signed by A": envelope(forged_statuses, messages=[stop], pnid=PNID_B),
        "B's wamids and recipient ids under A's own number, signed by A": envelope(forged_statuses, pnid=PNID_A),
        "a reply to B's campaign message under B's number, signed by A": envelope(
            messages=[
                {**stop, "id": "wamid.in.forged.reply", "text": {"body": "hi"}, "context": {"id": "wamid.b.sent"}}
            ],
            pnid=PNID_B,
        ),
    }
    answers = {name: _post(payload, SECRET_A) for name, payload in forgeries.items()}
    apply_all()
    after_forgeries = _snapshot(campaign.id)
    with Session(get_engine()) as s:
        inbound_on_b = len(s.exec(select(InboundMessage).where(InboundMessage.channel_id == b.id)).all())
        replied = s.get(Campaign, campaign.id).replied_count
    changed = [i for i, (x, y) in enumerate(zip(before["rows"], after_forgeries["rows"], strict=True)) if x != y]

    # Control: the same statuses signed by B (its own number) apply, except to the never-posted queued row.
    genuine = _post(
        envelope(
            [
                status_item("wamid.b.sent", "delivered"),
                status_item("wamid.genuine.1", "sent", opaque=str(sending.id)),
                status_item("wamid.genuine.2", "failed", opaque=str(queued.id), error=131026),
            ],
            pnid=PNID_B,
        ),
        SECRET_B,
    )
    apply_all()
    control = {r[0]: r[1] for r in _snapshot(campaign.id)["rows"]}

    ok = (
        not changed
        and after_forgeries["subscribed"] is True
        and inbound_on_b == 0
        and replied == 0
        and control == {sent.id: "delivered", sending.id: "sent", queued.id: "queued"}
    )
    record(
        "handlers",
        "cross-channel webhook forgery: statuses, callback ids and STOP signed by channel A "
        "against channel B's campaign",
        ok=ok,
        checked=len(forgeries) + 1,
        refused_correctly=len(forgeries) if not changed and after_forgeries["subscribed"] else 0,
        allowed_correctly=1 if control.get(sent.id) == "delivered" else 0,
        recipients_changed_by_forgery=len(changed),
        b_contact_unsubscribed=not after_forgeries["subscribed"],
        queued_row_after_genuine_failed=control.get(queued.id),
        answers=sorted(set(answers.values())),
    )
    assert genuine == 200
    assert changed == [], f"forged webhooks changed B's recipients: {before['rows']} -> {after_forgeries['rows']}"
    assert after_forgeries["subscribed"] is True, "a STOP signed by A unsubscribed B's contact"
    assert inbound_on_b == 0 and replied == 0
    assert control == {sent.id: "delivered", sending.id: "sent", queued.id: "queued"}
