"""The daily messaging limit's count (app/services/sending/quota.py) on real Redis and the real database:
people already messaged in the window pass free, new people pass while places are left, the rest are held
until the oldest leaves the window; two workers share one count; a lost Redis set is rebuilt from the
database (the source of truth) before anyone more is admitted."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import redis.asyncio as aioredis

from app.db import get_engine
from app.models import Campaign, CampaignRecipient
from app.services.sending.claims import Claimed
from app.services.sending.quota import QuotaGate
from app.timeutil import utcnow
from tests.support.factories import make_channel, number

WINDOW_S = 60.0


def _rows(addresses: list[str]) -> list[Claimed]:
    return [Claimed(i + 1, a, None, {}, 1) for i, a in enumerate(addresses)]


def test_quota_admits_within_the_tier_and_holds_the_rest(session, redis_client, redis_url):
    channel = make_channel(session, "http://127.0.0.1:9")
    channel.messaging_limit_tier = "TIER_5"
    session.add(channel)
    campaign = Campaign(name="Earlier", status="sent", channel_id=channel.id)
    session.add(campaign)
    session.commit()
    earlier = utcnow() - timedelta(seconds=10)
    session.add(CampaignRecipient(campaign_id=campaign.id, address=number(0), status="sent", sent_at=earlier))
    session.add(  # outside the window: does not count
        CampaignRecipient(
            campaign_id=campaign.id, address=number(9), status="sent", sent_at=utcnow() - timedelta(hours=1)
        )
    )
    session.commit()
    people = [number(i) for i in range(8)]

    async def run():
        aredis = aioredis.Redis.from_url(redis_url)
        try:
            worker1 = QuotaGate(get_engine(), channel, window_s=WINDOW_S)
            worker2 = QuotaGate(get_engine(), channel, window_s=WINDOW_S)
            first = await worker1.admit(aredis, _rows(people[1:8]))
            again = await worker2.admit(aredis, _rows([number(0), people[1], number(30)]))
            await aredis.flushdb()  # Redis lost: the count is rebuilt from the database
            rebuilt = await worker2.admit(aredis, _rows([number(20)]))
            return first, again, rebuilt
        finally:
            await aredis.aclose()

    first, again, rebuilt = asyncio.run(run())
    # number(0) was messaged 10 s ago (read from the database): 4 new people fill the tier of 5, 3 wait until
    # number(0) leaves the window
    assert [r.address for r in first.allowed] == people[1:5]
    assert [r.address for r in first.held] == people[5:8]
    assert first.free_at is not None
    assert abs((first.free_at - (earlier + timedelta(seconds=WINDOW_S))).total_seconds()) < 2
    # the other worker shares the count: people in the window pass (free), a new person waits
    assert [r.address for r in again.allowed] == [number(0), people[1]]
    assert [r.address for r in again.held] == [number(30)]
    # after the flush only what the database knows counts (number(0)): new people pass again
    assert [r.address for r in rebuilt.allowed] == [number(20)]


def test_an_unlimited_or_unknown_tier_costs_no_redis_call(session, redis_client):
    channel = make_channel(session, "http://127.0.0.1:9")
    for tier in ("", "TIER_UNLIMITED"):
        channel.messaging_limit_tier = tier
        gate = QuotaGate(get_engine(), channel, window_s=WINDOW_S)
        admission = asyncio.run(gate.admit(None, _rows([number(1), number(2)])))  # None: Redis is never touched
        assert not gate.active and len(admission.allowed) == 2 and not admission.held
