"""The status applier under a backlog (issue 16 §4): each pass looks at a window of the oldest unapplied
events first, yet nothing behind that window is starved — statuses whose wamid is not known yet at the
head of the backlog do not hold back the ones behind them, and a row matched by its callback data
(`hc:<campaign>:<row>`) behind a full batch is applied by a later pass."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from app.db import get_engine
from app.models import CampaignRecipient, WebhookStatusEvent
from app.services.inbound.webhook_ingest import WINDOW_FACTOR, apply_pending_statuses
from tests.support.webhook_payloads import add_recipients, envelope, post_signed, recipient, status_item


@pytest.fixture()
def world(webhook_world, redis_client):  # the route counts what it stored in Redis (/metrics)
    return webhook_world


def _pass(limit: int) -> int:
    with Session(get_engine()) as s:
        applied = apply_pending_statuses(s, limit=limit).applied
        s.commit()
    return applied


def _unapplied() -> set[str]:
    with Session(get_engine()) as s:
        events = s.exec(select(WebhookStatusEvent).where(WebhookStatusEvent.applied_at.is_(None))).all()
        return {e.message_id for e in events}


def test_unknown_wamids_at_the_head_do_not_hold_back_the_statuses_behind_them(world, session):
    limit = 5
    cid = world["campaign"].id
    rids = add_recipients(session, cid, limit, status="sent")
    unknown = [status_item(f"wamid.not-yet.{i}", "delivered") for i in range(WINDOW_FACTOR * limit * 3)]
    assert post_signed(envelope(unknown)).status_code == 200
    assert (
        post_signed(envelope([status_item(f"wamid.{cid}.{i}", "delivered") for i in range(limit)])).status_code == 200
    )

    assert _pass(limit) == limit  # one pass, although the oldest 3 windows' worth of events match nothing
    assert [recipient(rid).status for rid in rids] == ["delivered"] * limit
    assert _unapplied() == {item["id"] for item in unknown}  # kept, retried by later passes


def test_a_callback_match_behind_a_full_batch_is_applied_by_a_later_pass(world, session):
    cid = world["campaign"].id
    rids = add_recipients(session, cid, 6, status="sent")
    row = CampaignRecipient(campaign_id=cid, address="+33699999999", status="sending")  # a crash lost its wamid
    session.add(row)
    session.commit()
    stuck = row.id
    statuses = [status_item(f"wamid.{cid}.{i}", "delivered") for i in range(6)]
    statuses.append(status_item("wamid.recovered", "sent", opaque=f"hc:{cid}:{stuck}"))
    assert post_signed(envelope(statuses)).status_code == 200

    assert _pass(3) == 3  # a full batch by wamid: the callback event lies beyond what it walked
    assert recipient(stuck).status == "sending"
    while _pass(3):
        pass
    r = recipient(stuck)
    assert (r.status, r.message_id) == ("sent", "wamid.recovered")
    assert [recipient(rid).status for rid in rids] == ["delivered"] * 6
    assert _unapplied() == set()
