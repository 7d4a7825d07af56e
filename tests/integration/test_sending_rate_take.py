"""The take script on a real Redis: two clients share one rate, and the rows of a group join the
"may have been posted" set only when the group's tokens were granted."""

from __future__ import annotations

import asyncio
import time

import redis.asyncio as aioredis

from app.services.sending.rate_limit import ChannelRate, RateLimiter


def test_two_takers_share_one_rate_and_mark_only_granted_rows(redis_client, redis_url):
    async def go():
        a, b = aioredis.Redis.from_url(redis_url), aioredis.Redis.from_url(redis_url)
        rate = ChannelRate(17, 200, 0.01)
        la, lb = RateLimiter(a, rate), RateLimiter(b, rate)
        counter = iter(range(10_000))
        granted: list[int] = []

        async def taker(limiter):
            end = time.monotonic() + 1.5
            while time.monotonic() < end:
                ids = [next(counter), next(counter)]
                if await limiter.take_when_free(2, "posted", ids):
                    granted.extend(ids)

        try:
            started = time.monotonic()
            await asyncio.gather(taker(la), taker(lb))
            elapsed = time.monotonic() - started
            # a take the rate cannot grant now (5 s of the rate were just taken) is refused with
            # a wait, and marks nothing
            while await la.take(1000, "posted", [-4]):
                await asyncio.sleep(0.01)
            wait = await lb.take(1, "posted", [-5])
        finally:
            await a.aclose()
            await b.aclose()
        return granted, wait, elapsed

    granted, wait, elapsed = asyncio.run(go())
    marked = {int(m) for m in redis_client.smembers("posted")}
    assert marked == set(granted) | {-4}
    assert -5 not in marked and wait > 4
    # never more than the rate over the time it ran, plus the 10 ms tolerance and one group
    assert 0 < len(granted) <= elapsed * 200 + 2 + 2


def test_take_respects_the_shared_cool_down(redis_client, redis_url):
    async def go():
        client = aioredis.Redis.from_url(redis_url)
        try:
            limiter = RateLimiter(client, ChannelRate(18, 1000, 0.01))
            started = time.monotonic()
            await limiter.cool_down(0.5)
            wait = await limiter.take(1, "posted", [1])
            return wait, time.monotonic() - started
        finally:
            await client.aclose()

    # The rest of the cool-down: 0.5 s less the time the two calls took (a stalled runner shortens it, never more).
    wait, took = asyncio.run(go())
    assert 0.5 - took - 0.01 <= wait <= 0.5 and wait > 0
    assert not redis_client.smembers("posted")
