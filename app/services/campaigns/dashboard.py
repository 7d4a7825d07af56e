"""The home dashboard (SPEC S19, issue 15 §7): the last 7, 30 or 90 days of messaging at a glance.

What each figure means (days are UTC calendar days; "the last 7 days" is today and the 6 days before):
- **sent**: recipient rows handed to WhatsApp and accepted (`sent_at`) in the window, whatever happened next;
- **delivered** / **read**: of those, the rows whose latest status is delivered or read / read (a funnel by
  the day a message was sent, as the campaign page counts it). Delivery rate = delivered ÷ sent; read
  rate = read ÷ delivered (an "open rate": of the messages that reached a phone, how many were opened);
- **failed**: rows that failed (`failed_at`) in the window, refused at once or reported later by webhook;
- **replies**: messages received in the window that answer a campaign message, as the campaign page counts
  them (its `context.id` is a wamid that campaign sent, through the same channel: `inbound_messages.campaign_id`,
  set when the reply is recorded). A STOP sent as such a reply counts here and again as an opt-out; messages
  that answer no campaign message are not replies;
- **opt-outs**: WhatsApp identities unsubscribed in the window and still unsubscribed (a STOP keyword, a
  "user unsubscribed" error from Meta, or by hand on the Contacts page);
- **needs attention**: Paused campaigns (with the reason), campaigns that Failed in the window, and Sending
  campaigns where more than FAILING_RATIO of the messages handled so far failed.

Speed (bench/dashboard.py: 1,000,000 contacts, 5,000,000 recipient rows on PostgreSQL): every query reads an
index range for the window only, never the recipients table: the per-day figures come from
ix_recipient_sent_status (sent_at, status) in an index-only scan, failures from ix_recipient_failed_at,
replies from ix_inbound_received_campaign (received_at, campaign_id), opt-outs from a partial index holding only unsubscribed WhatsApp
identities (migration 0011). Campaigns needing attention read the small campaigns table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Date, case, cast, func, literal_column, or_, select, text
from sqlmodel import Session

from app.domain import permissions as perm
from app.domain.campaign_status import (
    FAILED,
    PAUSED,
    R_DELIVERED,
    R_READ,
    SENDING,
    STATUS_LABELS,
)
from app.domain.messaging_limits import TierError, tier_label
from app.models import Campaign, CampaignRecipient, Channel, ContactIdentity, InboundMessage, User
from app.services.access import require
from app.services.campaigns import daily_stats
from app.services.paging import fmt_time
from app.timeutil import utcnow

WINDOWS = (7, 30, 90)
DEFAULT_WINDOW = 30
# A Sending campaign is "failing" once this share of the messages it handled failed (and enough were).
FAILING_RATIO = 0.10
FAILING_MIN_HANDLED = 20
ATTENTION_LIMIT = 20

R = CampaignRecipient.__table__
I = InboundMessage.__table__  # noqa: E741 - a table alias, as R above
IDS = ContactIdentity.__table__


class DashboardError(ValueError):
    pass


@dataclass
class Dashboard:
    days: int
    since: date
    until: date
    sent: int = 0
    delivered: int = 0
    read: int = 0
    failed: int = 0
    replies: int = 0
    opt_outs: int = 0
    per_day: list[dict] = field(default_factory=list)  # one row per day of the window, oldest first
    channels: list[dict] = field(default_factory=list)
    attention: list[dict] = field(default_factory=list)

    @property
    def delivery_rate(self) -> str:
        return _pct(self.delivered, self.sent)

    @property
    def read_rate(self) -> str:
        return _pct(self.read, self.delivered)


def _pct(part: int, whole: int) -> str:
    return f"{part * 100 / whole:.1f}%" if whole else "—"


def window_days(days) -> int:
    """7, 30 or 90 (a crafted value from the browser is refused with a clear error)."""
    try:
        number = int(str(days).strip())
    except (TypeError, ValueError):
        number = 0
    if number not in WINDOWS:
        raise DashboardError(f"Choose the last {', '.join(map(str, WINDOWS[:-1]))} or {WINDOWS[-1]} days.")
    return number


def window_start(days: int, now: datetime) -> datetime:
    """Midnight UTC of the window's first day: today counts as one of the `days`."""
    first = now.astimezone(UTC).date() - timedelta(days=days - 1)
    return datetime.combine(first, time.min, tzinfo=UTC)


def utc_day(session: Session, column):
    """The UTC calendar day of a timestamp column, computed from the index entry itself (no table read)."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone(literal_column("'UTC'"), column), Date)
    return func.date(column)  # SQLite stores UTC text 'YYYY-MM-DD HH:MM:SS...'


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


# --- the queries (each one an index range; bench/dashboard.py times them one by one) ---------------------


def live_sent_by_day(
    session: Session, since: datetime, until: datetime | None = None
) -> dict[date, tuple[int, int, int]]:
    """{day: (sent, delivered, read)} for the messages sent in [since, until) (index-only on (sent_at, status))."""
    day = utc_day(session, R.c.sent_at)
    query = select(
        day.label("day"),
        func.count(),
        func.sum(case((R.c.status.in_((R_DELIVERED, R_READ)), 1), else_=0)),
        func.sum(case((R.c.status == R_READ, 1), else_=0)),
    ).where(R.c.sent_at >= since)
    if until is not None:
        query = query.where(R.c.sent_at < until)
    rows = session.execute(query.group_by(day)).all()
    return {_as_date(d): (int(s), int(dl or 0), int(rd or 0)) for d, s, dl, rd in rows}


def sent_by_day(session: Session, since: datetime, now: datetime | None = None) -> dict[date, tuple[int, int, int]]:
    """The same figures, settled days read from daily_message_stats (see app.services.campaigns.daily_stats)."""
    return daily_stats.sent_by_day(session, since, live_sent_by_day, now)


def failed_by_day(session: Session, since: datetime) -> dict[date, int]:
    day = utc_day(session, R.c.failed_at)
    rows = session.execute(select(day, func.count()).where(R.c.failed_at >= since).group_by(day)).all()
    return {_as_date(d): int(n) for d, n in rows}


def replies_by_day(session: Session, since: datetime) -> dict[date, int]:
    day = utc_day(session, I.c.received_at)
    rows = session.execute(
        select(day, func.count()).where(I.c.received_at >= since, I.c.campaign_id.is_not(None)).group_by(day)
    ).all()
    return {_as_date(d): int(n) for d, n in rows}


def opt_out_predicate(session: Session):
    """The partial index's own predicate, as literal text: a planner uses a partial index only for a query
    whose condition matches it (a bound parameter would not, on SQLite or in a PostgreSQL generic plan)."""
    if session.get_bind().dialect.name == "postgresql":
        return text("contact_identities.channel_type = 'whatsapp' AND contact_identities.subscribed = false")
    return text("contact_identities.channel_type = 'whatsapp' AND contact_identities.subscribed = 0")


def opt_outs_since(session: Session, since: datetime) -> int:
    return int(
        session.execute(
            select(func.count())
            .select_from(IDS)
            .where(opt_out_predicate(session), IDS.c.subscription_changed_at >= since)
        ).scalar_one()
    )


def attention(session: Session, since: datetime) -> list[dict]:
    """Paused campaigns, campaigns that failed in the window, Sending ones failing now: newest first."""
    handled = Campaign.total_recipients - Campaign.queued_count
    failing = (
        (Campaign.status == SENDING)
        & (handled >= FAILING_MIN_HANDLED)
        & (Campaign.failed_count > handled * FAILING_RATIO)
    )
    rows = session.execute(
        select(Campaign)
        .where(
            or_(
                Campaign.status == PAUSED,
                (Campaign.status == FAILED) & (func.coalesce(Campaign.finished_at, Campaign.updated_at) >= since),
                failing,
            )
        )
        .order_by(Campaign.updated_at.desc(), Campaign.id.desc())
        .limit(ATTENTION_LIMIT)
    ).scalars()
    out = []
    for c in rows:
        done = max(0, c.total_recipients - c.queued_count)
        if c.status == PAUSED:
            reason = c.pause_reason or "Paused: resume it or cancel it."
        elif c.status == FAILED:
            reason = f"None of its {c.total_recipients:,} messages could be sent." if c.total_recipients else "Failed."
        else:
            reason = f"{c.failed_count:,} of {done:,} messages failed so far ({_pct(c.failed_count, done)})."
        out.append(
            {
                "id": c.id,
                "name": c.name,
                "status": c.status,
                "status_label": STATUS_LABELS.get(c.status, c.status),
                "reason": reason,
                "when": fmt_time(c.updated_at),
            }
        )
    return out


def channel_health(session: Session) -> list[dict]:
    """Each channel's state, messaging limit tier and quality (when Meta told us)."""
    out = []
    for ch in session.execute(select(Channel).order_by(Channel.name)).scalars():
        try:
            tier_text = tier_label(ch.messaging_limit_tier)
        except TierError:
            tier_text = ch.messaging_limit_tier
        quality = ch.quality_rating  # Meta's GREEN / YELLOW / RED ..., from its account webhooks
        out.append(
            {
                "id": ch.id,
                "name": ch.name,
                "kind": "Sandbox" if ch.kind == "sandbox" else "WhatsApp Cloud API",
                "status": ch.status,
                "phone": ch.display_phone_number or "",
                "tier": tier_text,
                "quality": quality.capitalize() if quality else "not known yet",
                "rate": f"{ch.messages_per_second} msg/s",
                "notice": ch.account_notice,
            }
        )
    return out


def dashboard(*, session: Session, actor: User, days=DEFAULT_WINDOW, now: datetime | None = None) -> Dashboard:
    """Everything the home dashboard shows for the last `days` (7, 30 or 90) days."""
    require(session, actor, perm.CAMPAIGNS_VIEW)
    days = window_days(days)
    now = now or utcnow()
    since = window_start(days, now)
    result = Dashboard(days=days, since=since.date(), until=now.astimezone(UTC).date())
    sent = sent_by_day(session, since, now)
    failed, replies = failed_by_day(session, since), replies_by_day(session, since)
    for offset in range(days):
        day = result.since + timedelta(days=offset)
        s, dl, rd = sent.get(day, (0, 0, 0))
        f, rp = failed.get(day, 0), replies.get(day, 0)
        result.sent, result.delivered, result.read = result.sent + s, result.delivered + dl, result.read + rd
        result.failed, result.replies = result.failed + f, result.replies + rp
        result.per_day.append(
            {
                "day": day.isoformat(),
                "label": f"{day:%b} {day.day}",
                "sent": s,
                "delivered": dl,
                "read": rd,
                "failed": f,
                "replies": rp,
            }
        )
    result.opt_outs = opt_outs_since(session, since)
    result.channels = channel_health(session)
    result.attention = attention(session, since)
    return result
