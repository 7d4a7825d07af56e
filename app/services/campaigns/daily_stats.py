"""Per-day message counts for the home dashboard: settled days from a small table, recent days live.

Counting the messages sent per day reads one index entry per message: 1.2 million for a 90-day window on a
5,000,000-row base (3.6 s on PostgreSQL, bench/dashboard.py), far above the dashboard's 300 ms. A day's
figures stop moving a few days after it ends (statuses come within seconds to hours of the send), so each
day older than SETTLE_DAYS is counted once into `daily_message_stats` and read from there afterwards. The
live part then covers today and the SETTLE_DAYS before (~5 % of a 90-day window).

What this gives up, on purpose: a read receipt arriving more than SETTLE_DAYS after its message was sent is
not added to that day's stored figures (Meta sends reads when the user opens the chat; after 3 days they are
a fraction of a percent). Every worker tick fills the days still missing (`fill_settled_days`), so the
dashboard itself rarely pays for a settled day.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select
from sqlmodel import Session

from app.models import DailyMessageStats
from app.timeutil import utcnow

SETTLE_DAYS = 3  # a day is settled once it ended this many days ago
KEEP_DAYS = 90  # the dashboard's longest window (today included): the worker keeps its settled days filled

Counts = dict[date, tuple[int, int, int]]  # {day: (sent, delivered, read)}
LiveCounter = Callable[[Session, datetime, datetime | None], Counts]


def settled_before(now: datetime) -> date:
    """The first day that is not settled yet: every earlier day's figures are stored once and reused."""
    return now.astimezone(UTC).date() - timedelta(days=SETTLE_DAYS)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def stored_days(session: Session, first: date, end: date) -> Counts:
    rows = session.execute(
        select(DailyMessageStats).where(DailyMessageStats.day >= first, DailyMessageStats.day < end)
    ).scalars()
    return {r.day: (r.sent, r.delivered, r.read) for r in rows}


def fill_days(session: Session, first: date, end: date, live: LiveCounter, now: datetime) -> Counts:
    """Count the settled days in [first, end) that have no stored row (one range query) and store them; a day
    without messages is stored as zeros so it is not counted again. Returns every day's counts."""
    stored = stored_days(session, first, end)
    missing = [first + timedelta(days=i) for i in range((end - first).days) if first + timedelta(days=i) not in stored]
    if not missing:
        return stored
    counted = live(session, _midnight(missing[0]), _midnight(missing[-1] + timedelta(days=1)))
    for day in missing:
        sent, delivered, read = counted.get(day, (0, 0, 0))
        # merge: two dashboards (or a dashboard and a worker) may fill the same day at once; same figures
        session.merge(DailyMessageStats(day=day, sent=sent, delivered=delivered, read=read, computed_at=now))
        stored[day] = (sent, delivered, read)
    session.commit()
    return stored


def sent_by_day(session: Session, since: datetime, live: LiveCounter, now: datetime | None = None) -> Counts:
    """{day: (sent, delivered, read)} from `since`: stored rows for settled days, the live count for the rest."""
    now = now or utcnow()
    boundary = settled_before(now)
    first = since.astimezone(UTC).date()
    counts: Counts = {}
    if first < boundary:
        counts.update(fill_days(session, first, boundary, live, now))
    counts.update(live(session, max(since, _midnight(boundary)), None))
    return counts


def fill_settled_days(session: Session, live: LiveCounter, now: datetime | None = None) -> int:
    """The worker's share: keep the last KEEP_DAYS settled days stored; returns how many days it counted."""
    now = now or utcnow()
    end = settled_before(now)
    first = now.astimezone(UTC).date() - timedelta(days=KEEP_DAYS - 1)  # the longest window's first day
    before = len(stored_days(session, first, end))
    return len(fill_days(session, first, end, live, now)) - before
