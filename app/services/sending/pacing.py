"""Slowing a campaign down when WhatsApp asks for it (issue 12), in Redis, shared by every worker.

- Held messages: a send answered `message_status: held_for_quality_assessment` (or `paused`) means Meta
  is judging how people react to the campaign before delivering more. Pushing the rest of the audience
  then only gets it held or blocked, so the row id joins `held_key` and the campaign's jobs claim no new
  rows until every held row's status arrives by webhook (`release`, called by the status applier) or
  `held_wait_max_s` passes (a status Meta never sends must not stall the campaign forever).
- Outages: `outage_seconds` answers for how long Meta has been failing this campaign's sends without a
  success in between (the first failure stamps the time; the next success clears it, `outage_over`).
Losing Redis loses only this pacing, never a message: the database keeps every row's state.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from app.services.sending.keys import held_key, outage_key

HELD_STATUSES = frozenset({"held_for_quality_assessment", "paused"})
_TTL_S = 7 * 24 * 3600


async def hold(aredis, campaign_id: int, row_ids: Iterable[int]) -> None:
    ids = list(row_ids)
    if ids:
        now = time.time()
        async with aredis.pipeline(transaction=False) as pipe:
            pipe.zadd(held_key(campaign_id), {str(i): now for i in ids})
            pipe.expire(held_key(campaign_id), _TTL_S)
            await pipe.execute()


async def held_count(aredis, campaign_id: int, max_wait_s: float) -> int:
    """Held rows still waiting for their status (those held longer than `max_wait_s` are dropped)."""
    key = held_key(campaign_id)
    async with aredis.pipeline(transaction=False) as pipe:
        pipe.zremrangebyscore(key, "-inf", time.time() - max_wait_s)
        pipe.zcard(key)
        _, count = await pipe.execute()
    return int(count)


def release(redis_client, rows_by_campaign: Mapping[int, Iterable[int]]) -> None:
    """A status arrived for these rows: they no longer hold their campaign back (one round trip)."""
    pipe = redis_client.pipeline(transaction=False)
    queued = False
    for campaign_id, ids in rows_by_campaign.items():
        members = [str(i) for i in ids]
        if members:
            pipe.zrem(held_key(campaign_id), *members)
            queued = True
    if queued:
        pipe.execute()


async def outage_seconds(aredis, campaign_id: int) -> float:
    """Stamp the start of an outage if none is running; how long the running one has lasted."""
    now = time.time()
    key = outage_key(campaign_id)
    async with aredis.pipeline(transaction=False) as pipe:
        pipe.set(key, f"{now:.3f}", nx=True, ex=_TTL_S)
        pipe.get(key)
        _, since = await pipe.execute()
    try:
        return max(0.0, now - float(since))
    except (TypeError, ValueError):
        return 0.0


async def outage_over(aredis, campaign_id: int) -> None:
    await aredis.delete(outage_key(campaign_id))
