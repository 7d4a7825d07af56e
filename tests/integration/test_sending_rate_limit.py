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


def test_throttles_double_the_cool_down_honour_retry_after_and_halve_the_rate(redis_client, redis_url):
    """Issue 12: Meta's throttle cools the whole number down (its Retry-After when given, else doubling with
    jitter) and halves the shared rate, at most `throttle_slow_max_halvings` times."""
    from app.services.sending.config import SendingConfig
    from app.services.sending.rate_limit import _keys, slow_key

    config = SendingConfig(
        rate_limit_cooldown_s=0.2, throttle_cap_s=1.0, throttle_slow_s=5, throttle_slow_max_halvings=2
    )

    async def go():
        client = aioredis.Redis.from_url(redis_url)
        try:
            limiter = RateLimiter(client, ChannelRate(11, 100, 0.02))
            waits = []
            for _ in range(4):
                waits.append(await limiter.throttled(config))
                await client.delete(_keys(11)[1])  # the cool-down is over: the next throttle is "in a row"
            in_flight = await limiter.throttled(config, retry_after=2.5)  # Meta said how long
            again = await limiter.throttled(config)  # a request that was in flight: the running cool-down
            return waits, in_flight, again, int(await client.get(slow_key(11)))
        finally:
            await client.aclose()

    waits, given, again, level = asyncio.run(go())
    assert 0.1 <= waits[0] <= 0.2 and 0.2 <= waits[1] <= 0.4 and 0.4 <= waits[2] <= 0.8, waits
    assert 0.5 <= waits[3] <= 1.0, "capped at throttle_cap_s"
    assert given == 2.5 and 2.3 <= again <= 2.5
    assert level == 2, "the rate was halved twice at most"
