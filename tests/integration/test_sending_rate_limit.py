"""The GCRA Lua script on a real Redis: reservations are spaced at the rate, shared by every client,
and a cool-down pushes everyone back."""

from __future__ import annotations

import asyncio
import time

import redis.asyncio as aioredis

from app.services.sending.rate_limit import ChannelRate, RateLimiter


def test_reservations_from_two_clients_share_one_rate(redis_client, redis_url):
    async def go():
        a, b = aioredis.Redis.from_url(redis_url), aioredis.Redis.from_url(redis_url)
        try:
            rate = ChannelRate(7, 100, 0.02)
            la, lb = RateLimiter(a, rate), RateLimiter(b, rate)
            # Each reservation's slot = when it was asked + how long it must wait. On a busy machine the
            # asking itself takes time, so the waits shrink; the slots must not.
            slots = []
            for i in range(100):
                asked = time.monotonic()
                slots.append(asked + await (la if i % 2 else lb).acquire(1))
        finally:
            await a.aclose()
            await b.aclose()
        return slots

    slots = asyncio.run(go())
    # 100 reservations at 100/s: the last slot is about a second after the first (minus the small burst),
    # whoever asked; scheduling noise of the asking loop is allowed a few milliseconds per slot.
    assert 0.88 <= slots[-1] - slots[0] <= 1.05
    assert all(later >= earlier - 0.005 for earlier, later in zip(slots, slots[1:], strict=False))


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
