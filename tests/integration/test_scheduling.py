"""Scheduling: a campaign starts at its UTC instant exactly once, however many schedulers tick at the
same moment; past times are refused; cancel and reschedule work until it starts."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from sqlmodel import select

from app.models import AuditLog
from app.services.sending.lifecycle import (
    SendingError,
    cancel_campaign,
    reschedule_campaign,
    schedule_campaign,
)
from app.services.sending.scheduler import start_due_campaigns
from app.timeutil import utcnow
from tests.support.factories import campaign_row, make_sandbox_campaign, recipients
from tests.support.processes import drive_until, stop_process, worker_process
from tests.support.sandbox import run_sandbox
from tests.support.wait import wait_until


@pytest.fixture()
def setup(session, redis_client, make_user, tmp_path):
    with run_sandbox(tmp_path / "sandbox") as sb:
        user = make_user("basic")
        campaign = make_sandbox_campaign(session, sb, 25)
        yield {"sb": sb, "user": user, "campaign": campaign, "session": session}


def test_schedule_stores_the_utc_instant_of_the_local_time(setup):
    s, user, campaign = setup["session"], setup["user"], setup["campaign"]
    now = datetime(2030, 3, 1, 12, 0, tzinfo=utcnow().tzinfo)
    done = schedule_campaign(
        session=s, actor=user, campaign_id=campaign.id, tz="Europe/Paris", local_dt="2030-07-14T09:30", now=now
    )
    assert done.status == "scheduled" and done.timezone == "Europe/Paris"
    assert campaign_row(campaign.id).scheduled_at == datetime(2030, 7, 14, 7, 30, tzinfo=utcnow().tzinfo)  # CEST
    assert s.exec(select(AuditLog).where(AuditLog.action == "campaign.schedule")).first() is not None


def test_schedule_refuses_past_and_impossible_times(setup):
    s, user, campaign = setup["session"], setup["user"], setup["campaign"]
    with pytest.raises(SendingError, match="future"):
        schedule_campaign(
            session=s,
            actor=user,
            campaign_id=campaign.id,
            tz="UTC",
            local_dt=(utcnow() - timedelta(minutes=1)).replace(tzinfo=None),
        )
    with pytest.raises(SendingError, match="does not exist"):
        schedule_campaign(
            session=s, actor=user, campaign_id=campaign.id, tz="Europe/Paris", local_dt="2031-03-30T02:30"
        )  # the hour skipped when clocks go forward
    with pytest.raises(SendingError, match="time zone"):
        schedule_campaign(
            session=s, actor=user, campaign_id=campaign.id, tz="Mars/Olympus", local_dt="2031-03-30T02:30"
        )
    assert campaign_row(campaign.id).status == "draft"


def test_two_scheduler_ticks_racing_start_it_once(setup, redis_url):
    s, user, campaign, sb = setup["session"], setup["user"], setup["campaign"], setup["sb"]
    schedule_campaign(
        session=s,
        actor=user,
        campaign_id=campaign.id,
        tz="UTC",
        local_dt=(utcnow() + timedelta(hours=1)).replace(tzinfo=None),
    )
    due_at = utcnow() + timedelta(hours=1, seconds=1)
    assert start_due_campaigns(now=due_at - timedelta(hours=2)) == []  # not due yet
    barrier = threading.Barrier(4)
    results: list[list[int]] = []

    def tick():
        barrier.wait()
        results.append(start_due_campaigns(now=due_at))

    threads = [threading.Thread(target=tick) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(len(r) for r in results) == [0, 0, 0, 1], results
    assert len(recipients(campaign.id)) == 25  # the audience was frozen once
    starts = s.exec(select(AuditLog).where(AuditLog.action == "campaign.send")).all()
    assert len(starts) == 1 and starts[0].actor_id == user.id
    done = drive_until(redis_url, campaign.id)
    assert done.status == "sent"
    per = sb.log()["per_recipient"]
    assert len(per) == 25 and set(per.values()) == {1}


@pytest.mark.timeout(90)
def test_scheduled_campaign_fires_once_with_two_worker_processes(setup, redis_url, database_url, tmp_path):
    s, user, campaign, sb = setup["session"], setup["user"], setup["campaign"], setup["sb"]
    schedule_campaign(
        session=s,
        actor=user,
        campaign_id=campaign.id,
        tz="UTC",
        local_dt=(utcnow() + timedelta(seconds=3)).replace(tzinfo=None),
    )
    env = {"HUBCAST_SEND_TICK_INTERVAL_S": "0.5"}
    workers = [worker_process(tmp_path, database_url, redis_url, f"w{i}", env) for i in range(2)]
    try:
        done = wait_until(
            lambda: campaign_row(campaign.id).status == "sent" and campaign_row(campaign.id),
            timeout=60,
            interval=0.3,
            message="scheduled campaign sent",
        )
    finally:
        for w in workers:
            stop_process(w)
    assert done.started_at >= done.scheduled_at
    assert len(s.exec(select(AuditLog).where(AuditLog.action == "campaign.send")).all()) == 1
    per = sb.log()["per_recipient"]
    assert len(per) == 25 and set(per.values()) == {1}


def test_cancel_and_reschedule_before_it_starts(setup):
    s, user, campaign = setup["session"], setup["user"], setup["campaign"]
    later = (utcnow() + timedelta(days=1)).replace(tzinfo=None, microsecond=0)
    schedule_campaign(session=s, actor=user, campaign_id=campaign.id, tz="UTC", local_dt=later)
    moved = reschedule_campaign(session=s, actor=user, campaign_id=campaign.id, tz="America/New_York", local_dt=later)
    assert moved.status == "scheduled" and moved.timezone == "America/New_York"
    assert campaign_row(campaign.id).scheduled_at > later.replace(tzinfo=utcnow().tzinfo)
    cancel_campaign(session=s, actor=user, campaign_id=campaign.id)
    assert start_due_campaigns(now=utcnow() + timedelta(days=3)) == []
    assert campaign_row(campaign.id).status == "cancelled" and not recipients(campaign.id)
    with pytest.raises(SendingError):
        reschedule_campaign(session=s, actor=user, campaign_id=campaign.id, tz="UTC", local_dt=later)


def test_a_scheduled_campaign_that_can_no_longer_go_out_returns_to_draft_with_the_reason(setup):
    s, user, campaign = setup["session"], setup["user"], setup["campaign"]
    schedule_campaign(
        session=s,
        actor=user,
        campaign_id=campaign.id,
        tz="UTC",
        local_dt=(utcnow() + timedelta(hours=1)).replace(tzinfo=None),
    )
    from app.models import Template

    template = s.get(Template, campaign.template_id)
    template.status = "PAUSED"
    s.add(template)
    s.commit()
    assert start_due_campaigns(now=utcnow() + timedelta(hours=2)) == []
    back = campaign_row(campaign.id)
    assert back.status == "draft" and "not approved" in back.pause_reason
