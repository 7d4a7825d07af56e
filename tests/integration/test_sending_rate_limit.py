"""The GCRA Lua script on a real Redis: reservations are spaced at the rate, shared by every client,
and a cool-down pushes everyone back."""

from __future__ import annotations

import asyncio
import time

import redis.asyncio as aioredis

from app.services.sending.rate_limit import US, ChannelRate, RateLimiter, _keys


def test_reservations_from_two_clients_share_one_rate(redis_client, redis_url):
    async def server_now_us(client) -> int:
        seconds, micros = await client.time()
        return seconds * US + micros

    async def go():
        a, b = aioredis.Redis.from_url(redis_url), aioredis.Redis.from_url(redis_url)
        try:
            rate = ChannelRate(7, 100, 0.02)
            la, lb = RateLimiter(a, rate), RateLimiter(b, rate)
            tat_key = _keys(rate.channel_id)[0]
            # Each reservation's slot is read on Redis's clock (the TAT it moved, minus one interval), and the
            # wait it answered is checked against Redis TIME taken just before and after the call. The client's
            # own clock is not used: on a busy CI runner a round trip can stall for 20 ms and a slot computed
            # as "asked + wait" then appears to move backwards though the limiter's pace was even.
            reservations = []
            for i in range(100):
                client, limiter = (a, la) if i % 2 else (b, lb)
                before = await server_now_us(client)
                wait_us = round(await limiter.acquire(1) * US)
                after = await server_now_us(client)
                slot = int(await client.get(tat_key)) - rate.interval_us
                reservations.append((before, slot, wait_us, after))
        finally:
            await a.aclose()
            await b.aclose()
        return rate, reservations

    rate, reservations = asyncio.run(go())
    slots = [slot for _, slot, _, _ in reservations]
    # Whoever asked, each reservation comes at least one interval (10 ms at 100/s) after the previous one: never
    # two on one slot, one rate shared by both clients. The asking loop is faster than the rate, so slots queue up
    # exactly one interval apart; only a stall of the loop longer than the queue lets a later slot start afresh.
    interval = rate.interval_us
    gaps = [later - earlier for earlier, later in zip(slots, slots[1:], strict=False)]
    assert all(gap >= interval for gap in gaps), gaps
    assert sum(gap == interval for gap in gaps) >= 90, gaps
    # The wait each caller was told runs from the script's "now" to its slot, and that "now" lies between the
    # Redis TIMEs read just before and after the call (a slot already due answers 0: send now).
    for before, slot, wait_us, after in reservations:
        if wait_us > 0:
            assert before <= slot - wait_us <= after, (before, slot, wait_us, after)
        else:
            assert slot <= after, (slot, after)


def test_cool_down_delays_every_reservation(redis_client, redis_url):
    async def go():
        client = aioredis.Redis.from_url(redis_url)
        try:
            limiter = RateLimiter(client, ChannelRate(8, 1000, 0.02))
            started = time.monotonic()
            await limiter.cool_down(0.5)
            wait = await limiter.acquire(1)
            return wait, time.monotonic() - started
        finally:
            await client.aclose()

    # The rest of the cool-down: 0.5 s less the time the two calls took (a stalled runner shortens it, never more).
    wait, took = asyncio.run(go())
    assert 0.5 - took - 0.01 <= wait <= 0.5 and wait > 0


def test_throttles_double_the_cool_down_honour_retry_after_and_halve_the_rate(redis_client, redis_url):
    """Issue 12: Meta's throttle cools the whole number down (its Retry-After when given, else doubling with
    jitter) and halves the shared rate, at most `throttle_slow_max_halvings` times."""
    from app.services.sending.config import SendingConfig
    from app.services.sending.rate_limit import slow_key

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
            started = time.monotonic()
            in_flight = await limiter.throttled(config, retry_after=2.5)  # Meta said how long
            again = await limiter.throttled(config)  # a request that was in flight: the running cool-down
            return waits, in_flight, again, time.monotonic() - started, int(await client.get(slow_key(11)))
        finally:
            await client.aclose()

    waits, given, again, took, level = asyncio.run(go())
    assert 0.1 <= waits[0] <= 0.2 and 0.2 <= waits[1] <= 0.4 and 0.4 <= waits[2] <= 0.8, waits
    assert 0.5 <= waits[3] <= 1.0, "capped at throttle_cap_s"
    # the second throttle only reports what is left of Meta's 2.5 s (less the time the two calls took), no more
    assert given == 2.5 and 2.5 - took - 0.01 <= again <= 2.5
    assert level == 2, "the rate was halved twice at most"
