"""The GCRA Lua script on a real Redis: reservations are spaced at the rate, shared by every client,
and a cool-down pushes everyone back."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from app.services.sending.rate_limit import ChannelRate, RateLimiter


def test_reservations_from_two_clients_share_one_rate(redis_client, redis_url):
    async def go():
        a, b = aioredis.Redis.from_url(redis_url), aioredis.Redis.from_url(redis_url)
        try:
            rate = ChannelRate(7, 100, 0.02)
            la, lb = RateLimiter(a, rate), RateLimiter(b, rate)
            waits = [await (la if i % 2 else lb).acquire(1) for i in range(100)]
        finally:
            await a.aclose()
            await b.aclose()
        return waits

    waits = asyncio.run(go())
    assert waits[:3] == [0, 0, 0]
    # 100 reservations at 100/s: the last one waits about a second (minus the small burst)
    assert 0.9 <= waits[-1] <= 1.05
    assert all(later >= earlier for earlier, later in zip(waits, waits[1:]))


def test_cool_down_delays_every_reservation(redis_client, redis_url):
    async def go():
        client = aioredis.Redis.from_url(redis_url)
        try:
            limiter = RateLimiter(client, ChannelRate(8, 1000, 0.02))
            await limiter.cool_down(0.5)
            return await limiter.acquire(1)
        finally:
            await client.aclose()

    assert 0.4 <= asyncio.run(go()) <= 0.5
