"""Meta's daily messaging limit while sending: who may get a template message now, who waits.

"Unique users per rolling 24 h" = the distinct people any channel of the portfolio sent a template to in
the last window (`settings.messaging_limit_window_s`, 24 h). The engine keeps that set in Redis, one sorted
set per portfolio scope (`messaging_limit.quota_scope`): member = the address, score = when it was last
messaged (Redis TIME, so every worker agrees). A send job asks once per *claim* (up to `batch_size` rows),
in ONE round trip (`_ADMIT`, a Lua script, atomic across workers): people already in the window pass without
using the quota, new people pass while the count is under the limit, the rest are *held*. Held rows go
back to `queued` with their attempt given back, `next_attempt_at` = when the oldest person leaves the window,
and the title "Waiting for quota"; the job then stops claiming (every other due row of the campaign is held
the same way in the same statement, so a campaign far over its quota costs one claim, not one per row),
and `job.send_campaign_batch` re-enqueues it for that time. Unlimited or unknown tiers cost nothing here:
no Redis call at all.

The database stays the source of truth: when the set's "seeded" mark is missing (first use, a Redis loss,
or the mark expired), the set is rebuilt from `campaign_recipients.sent_at` of the scope's channels over the
window (`ix_recipient_sent_at`) before admitting. A row admitted but then not sent (paused, stopped) keeps
its place in the set until the window passes: the count errs on the side of sending less, never more.
`quota_outlook` is the same count for the review step ("needs N, M left"), `waiting_for_quota` what the
campaign page shows live.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import distinct, func, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.domain.campaign_status import R_QUEUED, R_SENDING
from app.domain.messaging_limits import QUOTA_WAIT_TITLE, QuotaPlan, quota_left, quota_plan
from app.models import Campaign, CampaignRecipient, Channel
from app.services.channels.messaging_limit import channel_limit, quota_scope, scope_channel_ids
from app.services.sending.claims import Claimed, begin_write
from app.settings import messaging_limit_window_s
from app.timeutil import utcnow

log = logging.getLogger(__name__)
R = CampaignRecipient.__table__
C = Campaign.__table__
_SEED_CHUNK = 1000

# KEYS: the set, its "seeded" mark. ARGV: window seconds, limit, addresses...
# Returns {"-1"} when the set must be seeded first, else {flags ("1" admitted / "0" held, one per address),
# when the next place frees (Redis TIME seconds, "" when nobody was held), people in the window}.
_ADMIT = """
local key, seeded = KEYS[1], KEYS[2]
local window, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
if redis.call('EXISTS', seeded) == 0 then return {'-1'} end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
local flags, members, held = {}, {}, false
for first = 3, #ARGV, 1000 do  -- ZMSCORE / ZADD in slices: Lua's unpack() has a stack limit
  local last = math.min(first + 999, #ARGV)
  local scores = redis.call('ZMSCORE', key, unpack(ARGV, first, last))
  for i = first, last do
    if scores[i - first + 1] or count < limit then
      if not scores[i - first + 1] then count = count + 1 end
      flags[i - 2] = '1'
      members[#members + 1] = now
      members[#members + 1] = ARGV[i]
    else
      flags[i - 2] = '0'
      held = true
    end
  end
  if #members > 0 then redis.call('ZADD', key, unpack(members)) end
  members = {}
end
redis.call('EXPIRE', key, math.ceil(window) + 60)
local free_at = ''
if held then
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if oldest[2] then free_at = string.format('%.3f', tonumber(oldest[2]) + window) end
end
return {table.concat(flags), free_at, tostring(count)}
"""


def set_key(scope: str) -> str:
    return f"hubcast:quota:{scope}"


def seeded_key(scope: str) -> str:
    return f"hubcast:quota:{scope}:seeded"


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def messaged_in_window(conn_or_session, channel_ids: list[int], since: datetime) -> list[tuple[str, datetime]]:
    """(address, last template message) of everyone the channels messaged since `since` (from the database)."""
    if not channel_ids:
        return []
    query = (
        select(R.c.address, func.max(R.c.sent_at))
        .select_from(R.join(C, C.c.id == R.c.campaign_id))
        .where(R.c.sent_at >= since, C.c.channel_id.in_(channel_ids))
        .group_by(R.c.address)
    )
    return [(a, _aware(t)) for a, t in conn_or_session.execute(query).all()]


def used_in_window(session: Session, channel_ids: list[int], since: datetime) -> int:
    """How many distinct people the channels messaged since `since` (one indexed range read)."""
    if not channel_ids:
        return 0
    query = (
        select(func.count(distinct(R.c.address)))
        .select_from(R.join(C, C.c.id == R.c.campaign_id))
        .where(R.c.sent_at >= since, C.c.channel_id.in_(channel_ids))
    )
    return int(session.execute(query).scalar() or 0)


@dataclass
class Admission:
    allowed: list[Claimed]
    held: list[Claimed]
    free_at: datetime | None = None  # when the next place frees (held rows wait until then)


class QuotaGate:
    """One send job's view of its channel's daily messaging limit (see the module docstring)."""

    def __init__(self, engine: Engine, channel: Channel, window_s: float | None = None) -> None:
        self.engine, self.channel = engine, channel
        self.limit = channel_limit(channel)
        self.window_s = window_s if window_s is not None else messaging_limit_window_s()
        self.scope = quota_scope(channel)
        self.key, self.seeded = set_key(self.scope), seeded_key(self.scope)

    @property
    def active(self) -> bool:
        return self.limit is not None

    def _seed_rows(self) -> list[tuple[str, datetime]]:
        with Session(self.engine) as session:
            ids = scope_channel_ids(session, self.channel)
            return messaged_in_window(session, ids, utcnow() - timedelta(seconds=self.window_s))

    async def seed(self, aredis) -> None:
        """Rebuild the set from the database (the source of truth) and mark it seeded for one window."""
        rows = await asyncio.to_thread(self._seed_rows)
        async with aredis.pipeline(transaction=False) as pipe:
            for start in range(0, len(rows), _SEED_CHUNK):
                pipe.zadd(self.key, {a: t.timestamp() for a, t in rows[start : start + _SEED_CHUNK]}, gt=True)
            pipe.expire(self.key, int(self.window_s) + 60)
            pipe.set(self.seeded, "1", ex=max(1, int(self.window_s)))
            await pipe.execute()
        log.info("messaging limit %s: %d people in the window, from the database", self.scope, len(rows))

    async def admit(self, aredis, rows: list[Claimed]) -> Admission:
        """Which claimed rows may be sent now (one Redis round trip; a second one only to seed)."""
        if not self.active or not rows:
            return Admission(list(rows), [])
        args = [self.window_s, self.limit, *(r.address for r in rows)]
        answer = await aredis.eval(_ADMIT, 2, self.key, self.seeded, *args)
        if _text(answer[0]) == "-1":
            await self.seed(aredis)
            answer = await aredis.eval(_ADMIT, 2, self.key, self.seeded, *args)
        flags, free = _text(answer[0]), _text(answer[1])
        allowed = [r for r, f in zip(rows, flags) if f == "1"]
        held = [r for r, f in zip(rows, flags) if f != "1"]
        free_at = datetime.fromtimestamp(float(free), UTC) if held and free else None
        if held and free_at is None:  # nobody in the window yet the limit is 0: try again after a window
            free_at = utcnow() + timedelta(seconds=self.window_s)
        return Admission(allowed, held, free_at)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def hold_rows(engine: Engine, campaign_id: int, held: list[Claimed], free_at: datetime, now: datetime) -> int:
    """Held rows (claimed, so `sending`) back to `queued` until `free_at`, attempt given back, "Waiting for
    quota"; and every other due queued row of the campaign waits as long (one statement). Returns how many
    rows of the campaign now wait. Raises on a database error (the caller then requeues the held rows)."""
    ids = [r.id for r in held]
    with engine.connect() as conn:
        begin_write(conn)
        for start in range(0, len(ids), 900):
            conn.execute(
                update(R)
                .where(R.c.id.in_(ids[start : start + 900]), R.c.status == R_SENDING)
                .values(
                    status=R_QUEUED,
                    attempts=R.c.attempts - 1,
                    next_attempt_at=free_at,
                    error_title=QUOTA_WAIT_TITLE,
                    updated_at=now,
                )
            )
        waiting = conn.execute(
            update(R)
            .where(
                R.c.campaign_id == campaign_id,
                R.c.status == R_QUEUED,
                (R.c.next_attempt_at.is_(None)) | (R.c.next_attempt_at < free_at),
            )
            .values(next_attempt_at=free_at, error_title=QUOTA_WAIT_TITLE, updated_at=now)
        ).rowcount
        conn.commit()
    return len(ids) + int(waiting or 0)


# --- what people see --------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuotaOutlook:
    limit: int | None  # None: unlimited / not known
    used: int  # people messaged in the window by the portfolio's channels
    plan: QuotaPlan

    @property
    def left(self) -> int | None:
        return self.plan.left


def quota_outlook(session: Session, channel: Channel, needed: int, *, window_s: float | None = None) -> QuotaOutlook:
    """For the review step: the campaign needs `needed` new conversations; how many are left in the window."""
    window_s = window_s if window_s is not None else messaging_limit_window_s()
    limit = channel_limit(channel)
    used = 0
    if limit is not None:
        used = used_in_window(session, scope_channel_ids(session, channel), utcnow() - timedelta(seconds=window_s))
    return QuotaOutlook(limit, used, quota_plan(needed, quota_left(limit, used)))


def already_messaged(session: Session, channel: Channel, addresses_select, *, window_s: float | None = None) -> int:
    """How many of the addresses `addresses_select` yields (a one-column SELECT) the portfolio already messaged
    in the window: they need no new conversation."""
    window_s = window_s if window_s is not None else messaging_limit_window_s()
    ids = scope_channel_ids(session, channel)
    if not ids:
        return 0
    since = utcnow() - timedelta(seconds=window_s)
    recent = (
        select(R.c.address)
        .select_from(R.join(C, C.c.id == R.c.campaign_id))
        .where(R.c.sent_at >= since, C.c.channel_id.in_(ids))
    )
    query = select(func.count(distinct(addresses_select.c[0]))).where(addresses_select.c[0].in_(recent))
    return int(session.execute(query).scalar() or 0)


def waiting_for_quota(session: Session, campaign_id: int) -> tuple[int, datetime | None]:
    """(rows of the campaign waiting for the messaging limit, when the next of them may go)."""
    count, first = session.execute(
        select(func.count(), func.min(R.c.next_attempt_at)).where(
            R.c.campaign_id == campaign_id, R.c.status == R_QUEUED, R.c.error_title == QUOTA_WAIT_TITLE
        )
    ).one()
    return int(count or 0), _aware(first)
