"""Issue 12 point 9: a status webhook only ever changes a recipient of a campaign on the channel whose
phone_number_id it names; `hc:<campaign>:<row>` callback data must name the row's own campaign; items for a
number no signing channel owns are kept as rejected (audit log) and never applied; orphan events (an
unknown wamid) are deleted after the retention period by the workers' sweeper. Real HTTP route (ASGI),
real database and Redis; the Sandbox side (sends carry `hc:...`) is checked in test_sending.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from app.db import get_engine
from app.models import AuditLog, Campaign, Channel, WebhookStatusEvent
from app.services.sending.config import SendingConfig
from app.services.sending.sweeper import expire_orphan_events, settle_stuck_rows
from app.timeutil import utcnow
from tests.support.webhook_payloads import (
    add_recipients,
    apply_all,
    envelope,
    event_count,
    post_signed,
    recipient,
    status_item,
)


@pytest.fixture()
def world(webhook_world, redis_client):
    return webhook_world


def _second_campaign(session, channel_id: int) -> int:
    other = Campaign(name="Other campaign", status="sending", channel_id=channel_id)
    session.add(other)
    session.commit()
    return other.id


def test_namespaced_callback_applies_only_to_the_campaign_it_names(world, session):
    cid = world["campaign"].id
    other = _second_campaign(session, world["channel"].id)
    [rid] = add_recipients(session, cid, 1, status="sending", wamid=False)
    post_signed(envelope([status_item("wamid.elsewhere", "delivered", opaque=f"hc:{other}:{rid}")]))
    apply_all()
    assert recipient(rid).status == "sending" and recipient(rid).message_id is None, "another campaign's row"
    post_signed(envelope([status_item("wamid.ours", "delivered", opaque=f"hc:{cid}:{rid}")]))
    apply_all()
    assert (recipient(rid).status, recipient(rid).message_id) == ("delivered", "wamid.ours")


def test_old_callback_forms_of_rows_in_flight_still_match(world, session):
    cid = world["campaign"].id
    [a, b] = add_recipients(session, cid, 2, status="sending", wamid=False)
    post_signed(
        envelope([status_item("wamid.a", "sent", opaque=str(a)), status_item("wamid.b", "sent", opaque=f"r:{b}")])
    )
    apply_all()
    assert recipient(a).message_id == "wamid.a" and recipient(b).message_id == "wamid.b"


def test_statuses_for_a_number_no_channel_owns_are_kept_as_rejected_and_never_applied(world, session):
    cid = world["campaign"].id
    [rid] = add_recipients(session, cid, 1, status="sent")
    wamid = recipient(rid).message_id
    response = post_signed(envelope([status_item(wamid, "failed", error=131026)], pnid="100000000000999"))
    assert response.status_code == 200  # acknowledged (Meta would retry a refusal forever), not applied
    apply_all()
    assert event_count() == 0 and recipient(rid).status == "sent"
    with Session(get_engine()) as s:
        [row] = s.exec(select(AuditLog).where(AuditLog.action == "webhook.rejected")).all()
    assert row.outcome == "refused" and row.detail["phone_number_ids"] == ["100000000000999"]
    assert row.detail["statuses"] == [{"id": wamid, "status": "failed", "phone_number_id": "100000000000999"}]


def test_a_status_through_another_channel_never_settles_this_channels_stuck_row(world, session):
    cid = world["campaign"].id
    [rid] = add_recipients(session, cid, 1, status="sending", wamid=False)
    other = Channel(name="Other", kind="whatsapp_cloud", phone_number_id="999", app_secret="other-secret")
    session.add(other)
    session.commit()
    # Channel "Other" signs a status naming our row through its own number: stored for it, applied to nothing.
    post_signed(
        envelope([status_item("wamid.forged", "failed", opaque=f"hc:{cid}:{rid}", error=131026)], pnid="999"),
        secret="other-secret",
    )
    apply_all()
    assert event_count() == 1 and recipient(rid).status == "sending"
    # Nor does the crash sweeper settle the stuck row from it: the row becomes `unknown`, not `failed`.
    with Session(get_engine()) as s:
        row = s.get(type(recipient(rid)), rid)
        row.claimed_at = utcnow() - timedelta(hours=1)
        s.add(row)
        s.commit()
    settle_stuck_rows(get_engine(), utcnow(), SendingConfig(stuck_grace_s=60))
    assert recipient(rid).status == "unknown" and recipient(rid).message_id is None


def test_orphan_events_expire_after_the_retention_period(world, session):
    cid = world["campaign"].id
    [rid] = add_recipients(session, cid, 1, status="sent")
    post_signed(
        envelope(
            [
                status_item("wamid.nobody-old", "delivered"),
                status_item("wamid.nobody-new", "delivered"),
                status_item(recipient(rid).message_id, "delivered"),
            ]
        )
    )
    apply_all()
    with Session(get_engine()) as s:
        old = s.exec(select(WebhookStatusEvent).where(WebhookStatusEvent.message_id == "wamid.nobody-old")).one()
        old.received_at = utcnow() - timedelta(days=8)
        applied = s.exec(select(WebhookStatusEvent).where(WebhookStatusEvent.applied_at.is_not(None))).one()
        applied.received_at = utcnow() - timedelta(days=8)
        s.add_all([old, applied])
        s.commit()
    removed = expire_orphan_events(get_engine(), utcnow(), SendingConfig(orphan_event_retention_s=7 * 24 * 3600))
    assert removed == 1
    with Session(get_engine()) as s:
        left = sorted(e.message_id for e in s.exec(select(WebhookStatusEvent)).all())
    assert left == sorted(["wamid.nobody-new", recipient(rid).message_id]), "only the expired orphan went"
