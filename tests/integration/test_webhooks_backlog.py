"""The status applier under a backlog (issue 16 §4): each pass looks at a window of the oldest unapplied
events first, yet nothing behind that window is starved — statuses whose wamid is not known yet at the
head of the backlog do not hold back the ones behind them, and a row matched by its callback data
(`hc:<campaign>:<row>`) behind a full batch is applied by a later pass."""

from __future__ import annotations

import random
import threading

import pytest
from sqlmodel import Session, select

from app.db import get_engine
from app.models import CampaignRecipient, WebhookStatusEvent
from app.services.inbound import status_applier
from app.services.inbound.webhook_ingest import WINDOW_FACTOR, apply_pending_statuses
from tests.support.webhook_payloads import (
    add_recipients,
    campaign,
    envelope,
    post_signed,
    recipient,
    status_item,
)


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


def test_passes_run_in_parallel_behind_a_backlog_and_apply_every_status_once(world, session, monkeypatch):
    """Behind a backlog, PostgreSQL runs `PARALLEL_PASSES` passes at once (`status_applier.run_passes`), SQLite
    one: either way every status lands on its row, none is left unapplied, and once the backlog is gone a single
    pass gives the campaign its final counters (the touched campaigns of every parallel pass are merged)."""
    cid = world["campaign"].id
    n, limit = 1500, 300
    rids = add_recipients(session, cid, n, status="sending")
    items = [
        status_item(f"wamid.{cid}.{i}", st, ts=1_750_000_000 + k)
        for i in range(n)
        for k, st in enumerate(("sent", "delivered", "read"))
    ]
    random.Random(7).shuffle(items)  # a recipient's three statuses spread over the backlog, as they arrive
    for start in range(0, len(items), 500):
        assert post_signed(envelope(items[start : start + 500])).status_code == 200

    passes: list[tuple[str, int]] = []  # (thread, events applied) of every pass
    real_pass = status_applier.run_pass

    def recorded_pass(dirty, pass_limit):
        applied = real_pass(dirty, pass_limit)
        passes.append((threading.current_thread().name, applied))
        return applied

    monkeypatch.setattr(status_applier, "run_pass", recorded_pass)
    dirties = [{} for _ in range(status_applier.PARALLEL_PASSES)]
    rounds = 0
    while status_applier.run_passes(dirties, limit, backlog=True):
        rounds += 1
        assert rounds < 100, "the backlog does not drain"
    assert status_applier.run_passes(dirties, limit, backlog=False) == 0  # the backlog is gone: one pass, final refresh

    assert _unapplied() == set()
    rows = [recipient(rid) for rid in rids]
    assert {r.status for r in rows} == {"read"}
    assert all(r.sent_at and r.delivered_at and r.read_at for r in rows)
    assert campaign(cid).read_count == n, "the final refresh counted every row"
    assert sum(applied for _, applied in passes) >= 3 * n
    busy_threads = {thread for thread, applied in passes if applied and thread.startswith("status-pass")}
    if session.get_bind().dialect.name == "postgresql":
        assert len(busy_threads) == status_applier.PARALLEL_PASSES, passes  # both passes did work at once
    else:
        assert not busy_threads, "SQLite has one writer: one pass at a time, on the caller's thread"
