"""Per-channel send rate, shared by every worker: GCRA in one Redis Lua script, Redis TIME as the clock.

GCRA keeps one number per channel, the "theoretical arrival time" (TAT) of the next message. A
caller *reserves* n messages: the script moves TAT forward by n emission intervals and answers how
long the caller must wait before sending them. Reserving (instead of refusing and retrying) means no
busy loop and a fair queue across workers; each reservation is used, so the rate can never exceed
`rate` over any window by more than the burst tolerance. All arithmetic is in integer microseconds
from Redis TIME, so machines with skewed clocks agree.

Campaign jobs use `take` instead: n messages now or, refused, how long until they could go. Nothing
is held in the future, so a caller that wakes late (a busy machine) wastes no capacity; reserving
ahead and re-reserving missed slots had made a loaded worker burn most of the rate in empty slots.

A shared cool-down (set after 130429 / HTTP 429) pushes every reservation past its end. `throttled()`
(issue 12) sets it for Meta's Retry-After when given, else for an exponentially growing, jittered time
(the throttles in a row double it), and halves the channel's rate for a while (`slow` level k: every
interval is multiplied by 2^k until the level expires), so every worker on the number slows down.
`gcra_reserve` is the same arithmetic in Python, for unit tests and for reasoning.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any

from app.services.sending.config import SendingConfig

US = 1_000_000

_RESERVE = """
local tat_key, cool_key = KEYS[1], KEYS[2]
local interval, tolerance, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
interval = interval * 2 ^ tonumber(redis.call('GET', KEYS[3]) or '0')
tolerance = math.max(tolerance, interval)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', tat_key) or '0')
local cool = tonumber(redis.call('GET', cool_key) or '0')
local start = math.max(tat, now - tolerance, cool)
local new_tat = start + n * interval
redis.call('SET', tat_key, string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
local wait = start - now
if wait < 0 then wait = 0 end
return wait
"""

# Take n messages *now* or not at all (answering how long until they could go): nothing is reserved
# in the future, so a caller that wakes up late wastes no capacity. When granted, the n row ids in
# ARGV[4..] join the "may have been posted" set (KEYS[3]) in the same round trip.
_TAKE = """
local tat_key, cool_key, posted_key = KEYS[1], KEYS[2], KEYS[3]
local interval, tolerance, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
interval = interval * 2 ^ tonumber(redis.call('GET', KEYS[4]) or '0')
tolerance = math.max(tolerance, interval)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', tat_key) or '0')
local cool = tonumber(redis.call('GET', cool_key) or '0')
local start = math.max(tat, now - tolerance, cool)
if start > now then
  return start - now
end
local new_tat = start + n * interval
redis.call('SET', tat_key, string.format('%d', new_tat), 'PX', math.max(0, math.ceil((new_tat - now) / 1000)) + 1000)
if posted_key and #ARGV > 3 then
  redis.call('SADD', posted_key, unpack(ARGV, 4))
end
return 0
"""

_COOL_DOWN = """
local cool_key = KEYS[1]
local seconds_us = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local until_us = now + seconds_us
local current = tonumber(redis.call('GET', cool_key) or '0')
if until_us > current then
  redis.call('SET', cool_key, string.format('%d', until_us), 'PX', math.ceil(seconds_us / 1000) + 1000)
end
return until_us
"""

# Throttled by Meta: KEYS cool, slow (rate halvings), streak (throttles in a row). ARGV: base cool-down (us),
# cap (us), Meta's own wait (us, 0: none), jitter factor in [0.5, 1] (per mille), slow TTL (ms), max halvings.
# Answers the cool-down set (us). One round trip, so concurrent throttles on one number add up once each.
_THROTTLED = """
local cool_key, slow_key, streak_key = KEYS[1], KEYS[2], KEYS[3]
local base, cap, given = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local jitter, slow_ms, max_level = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local current = tonumber(redis.call('GET', cool_key) or '0')
if current > now then
  return current - now
end
local streak = redis.call('INCR', streak_key)
redis.call('PEXPIRE', streak_key, math.ceil(cap / 1000) * 2 + slow_ms)
local wait = given
if wait <= 0 then
  wait = math.min(cap, base * 2 ^ (streak - 1)) * jitter / 1000
end
wait = math.floor(wait)
redis.call('SET', cool_key, string.format('%d', now + wait), 'PX', math.ceil(wait / 1000) + 1000)
local level = tonumber(redis.call('GET', slow_key) or '0')
if level < max_level then
  level = level + 1
end
redis.call('SET', slow_key, level, 'PX', slow_ms + math.ceil(wait / 1000))
return wait
"""


def gcra_take(
    tat_us: int, now_us: int, n: int, interval_us: int, tolerance_us: int, cool_until_us: int = 0
) -> tuple[int, int]:
    """(new TAT, 0) when n messages may go now, else (TAT unchanged, microseconds until they may);
    mirrors the take script. Same bound as `gcra_reserve`: over any window of W seconds at most
    W * rate + tolerance * rate + n messages go."""
    start = max(tat_us, now_us - tolerance_us, cool_until_us)
    if start > now_us:
        return tat_us, start - now_us
    return start + n * interval_us, 0


def gcra_reserve(
    tat_us: int, now_us: int, n: int, interval_us: int, tolerance_us: int, cool_until_us: int = 0
) -> tuple[int, int]:
    """(new TAT, microseconds to wait) for reserving n messages; mirrors the Lua script.

    The n messages may go at `start`: never earlier than the previous TAT, than the end of a
    cool-down, or than `now - tolerance` (idle capacity is banked only up to the tolerance: that is
    the largest burst). Over any window of W seconds at most W * rate + tolerance * rate + n
    messages can therefore go.
    """
    start = max(tat_us, now_us - tolerance_us, cool_until_us)
    new_tat = start + n * interval_us
    wait = max(0, start - now_us)
    return new_tat, wait


@dataclass(frozen=True)
class ChannelRate:
    channel_id: int
    per_second: float
    burst_seconds: float = 0.02

    @property
    def interval_us(self) -> int:
        return max(1, int(US / self.per_second)) if self.per_second > 0 else 0

    @property
    def tolerance_us(self) -> int:
        # At least one message may always go at once; otherwise `burst_seconds` worth of the rate.
        return max(self.interval_us, int(self.burst_seconds * US))


def _keys(channel_id: int) -> tuple[str, str]:
    return f"hubcast:rate:{channel_id}:tat", f"hubcast:rate:{channel_id}:cooldown"


def slow_key(channel_id: int) -> str:
    """How many times the channel's rate is halved for now (issue 12: throttled by Meta)."""
    return f"hubcast:rate:{channel_id}:slow"


def _streak_key(channel_id: int) -> str:
    return f"hubcast:rate:{channel_id}:throttles"


class RateLimiter:
    """Async facade over the scripts (redis.asyncio client). `acquire(n)` returns seconds to wait."""

    def __init__(self, redis_client, rate: ChannelRate):
        self.redis = redis_client
        self.rate = rate
        self._reserve = redis_client.register_script(_RESERVE)
        self._cool = redis_client.register_script(_COOL_DOWN)
        self._take = redis_client.register_script(_TAKE)
        self._throttled = redis_client.register_script(_THROTTLED)

    async def take(self, n: int, posted_key: str, members: list) -> float:
        """Take n messages now (0.0), adding `members` to the `posted_key` set in the same round
        trip; or, refused, the seconds until they could go (nothing taken, nothing added)."""
        if self.rate.per_second <= 0:
            if members:
                await self.redis.sadd(posted_key, *members)
            return 0.0
        tat_key, cool_key = _keys(self.rate.channel_id)
        wait_us = await self._take(
            keys=[tat_key, cool_key, posted_key, slow_key(self.rate.channel_id)],
            args=[self.rate.interval_us, self.rate.tolerance_us, n, *members],
        )
        return int(wait_us) / US

    async def take_when_free(self, n: int, posted_key: str, members: list, stop: asyncio.Event | None = None) -> bool:
        """Take n messages as soon as the rate allows (polling at the answered wait, no busy loop);
        False when `stop` was set first (then nothing was taken)."""
        while stop is None or not stop.is_set():
            wait = await self.take(n, posted_key, members)
            if wait <= 0:
                return True
            await asyncio.sleep(wait)
        return False

    async def acquire(self, n: int = 1) -> float:
        if self.rate.per_second <= 0:
            return 0.0
        tat_key, cool_key = _keys(self.rate.channel_id)
        wait_us = await self._reserve(
            keys=[tat_key, cool_key, slow_key(self.rate.channel_id)],
            args=[self.rate.interval_us, self.rate.tolerance_us, n],
        )
        return int(wait_us) / US

    async def wait(self, n: int = 1, max_late: float = 0.03, tries: int = 20) -> None:
        """Reserve n messages and sleep until their slot. A slot missed by more than `max_late`
        (the event loop or the machine stalled) is not used: sending late would bunch with the
        messages reserved after it and exceed the rate over that second; reserve a new one instead."""
        loop = asyncio.get_running_loop()
        for _ in range(tries):
            asked = loop.time()
            slot = asked + await self.acquire(n)
            now = loop.time()
            if slot > now:
                await asyncio.sleep(slot - now)
            if loop.time() - slot <= max_late:
                return

    async def cool_down(self, seconds: float) -> None:
        _, cool_key = _keys(self.rate.channel_id)
        await self._cool(keys=[cool_key], args=[max(1, int(seconds * US))])

    async def throttled(self, config: SendingConfig, retry_after: float | None = None) -> float:
        """Meta throttled this number: cool every sender down (Meta's wait when it gave one, else
        exponential with jitter) and halve the rate for a while. Seconds of cool-down; a throttle that
        arrives while one is running only reports the time left (requests already in flight)."""
        channel = self.rate.channel_id
        _, cool_key = _keys(channel)
        wait_us = await self._throttled(
            keys=[cool_key, slow_key(channel), _streak_key(channel)],
            args=[
                int(config.rate_limit_cooldown_s * US),
                int(config.throttle_cap_s * US),
                int((retry_after or 0) * US),
                random.randint(500, 1000),
                int(config.throttle_slow_s * 1000),
                config.throttle_slow_max_halvings,
            ],
        )
        return int(wait_us) / US


def channel_limiter(aredis, channel: Any, config: SendingConfig) -> RateLimiter:
    """The channel's shared send rate, as every sender on it must use it (campaign jobs, test sends)."""
    mps = float(channel.messages_per_second or 0)
    return RateLimiter(aredis, ChannelRate(channel.id, mps * config.rate_headroom, config.rate_burst_s))
