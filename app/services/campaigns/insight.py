"""A campaign's insight (issue 15): the delivery funnel, the timeline, failure reasons and countries.

Everything is an aggregate the database computes over one campaign's recipient rows, never rows
carried into Python, so the page can poll it while a 500,000-recipient campaign sends:
- the funnel reads the denormalised counters (`results.progress`), like the cards;
- the timeline while sending is per second over the last `LIVE_WINDOW_S` seconds, reading only the
  rows whose `updated_at` falls in that window (index `ix_recipient_campaign_updated`, migration 0010:
  every timestamp of a row is at most its `updated_at`); after sending it is per minute over the whole
  campaign (a wider bucket when the campaign spans more than `MAX_BUCKETS` minutes);
- failure reasons group the `failed` rows (index `ix_recipient_campaign_status`) by Meta's code;
- countries group by the number's first digits (enough to tell a calling code and a North American
  area code apart) and name each group's country with phonenumbers from one of its numbers.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import phonenumbers
from phonenumbers import geocoder
from sqlalchemy import Integer, case, cast, func, select
from sqlmodel import Session

from app.domain import permissions as perm
from app.domain.campaign_status import R_DELIVERED, R_FAILED, R_READ, R_SENT, SENDING
from app.models import Campaign, CampaignRecipient
from app.services.access import require
from app.services.campaigns import replies
from app.services.campaigns.results import CampaignNotFound, progress
from app.timeutil import utcnow
from app.whatsapp import errors as wa_errors

LIVE_WINDOW_S = 120  # per-second buckets shown while sending
TOP_FAILURES = 8
TOP_COUNTRIES = 12
_PREFIX_LEN = 5  # "+" and 4 digits: a calling code (1–3 digits) or "+1" and an area code

# Meta's per-user marketing limit (#131049) held the message back: its own recipient status ("limited",
# app/domain/campaign_status.py) beside failed; both have a reason worth showing.
R_LIMITED = "limited"
HELD_BACK = (R_FAILED, R_LIMITED)
MAX_POINTS = 120  # a timeline after sending: the smallest bucket that keeps the points under this
_BUCKETS_S = (1, 5, 10, 30, 60, 300, 900, 3600, 3 * 3600, 6 * 3600, 24 * 3600)
TIMELINE_SERIES = ("sent", "delivered", "read", "failed")
_SERIES_COLUMNS = {
    "sent": CampaignRecipient.sent_at,
    "delivered": CampaignRecipient.delivered_at,
    "read": CampaignRecipient.read_at,
    "failed": CampaignRecipient.failed_at,
}

# What a marketer can do about a failure, by the class of Meta's code (the title says what happened).
_HINTS: list[tuple[frozenset[int], str]] = [
    (frozenset({131026, 133010}), "Number not on WhatsApp (or cannot receive this message): check the number."),
    (frozenset({131047}), "Re-engagement window: more than 24 h since they wrote; only templates reach them."),
    (frozenset({131049}), "Meta held it back to protect engagement: send again later, not at once."),
    (frozenset({131050}), "They stopped marketing messages from you: they are unsubscribed."),
    (frozenset({132015}), "Template paused for low quality: edit it or use another template."),
    (frozenset({132016}), "Template disabled by Meta: use another template."),
    (wa_errors.TEMPLATE_ISSUE_CODES, "Template and variables do not match: check the template's variables."),
    (wa_errors.RATE_LIMIT_CODES | frozenset({131056}), "Rate limit: sent too fast; send again later."),
    (wa_errors.RETRYABLE_CODES, "Temporary problem at WhatsApp: send again later."),
    (frozenset({131021}), "The recipient is your own business number."),
    (frozenset({130497}), "Your business account cannot message this country."),
    (wa_errors.STOP_CAMPAIGN_CODES, "Account problem: check the channel's access and payment in Meta."),
]
# Codes worth sending again to later: what the engine retries, plus 131049 (Meta: retry after some time).
RESEND_LATER_CODES = frozenset(wa_errors.RETRYABLE_CODES | {131049})


def failure_hint(code: int | None) -> str:
    if code is None:
        return "No answer from WhatsApp: the outcome is unknown."
    for codes, hint in _HINTS:
        if code in codes:
            return hint
    return "See Meta's error code reference for this code."


def _campaign(session: Session, campaign_id) -> Campaign:
    try:
        campaign = session.get(Campaign, int(campaign_id))
    except (TypeError, ValueError):
        campaign = None
    if campaign is None:
        raise CampaignNotFound()
    return campaign


def _pct(part: int, whole: int) -> str:
    return f"{part * 100 / whole:.1f}%" if whole else "—"


# --- funnel ------------------------------------------------------------------------------------------


def funnel(campaign: Campaign) -> list[dict]:
    """recipients → sent → delivered → read → replied, each with its share of the recipients and of the
    step before (what a marketer reads as "delivery rate", "read rate", "reply rate")."""
    p = progress(campaign)
    steps = [
        ("Recipients", p["total"]),
        ("Sent", p["sent"]),
        ("Delivered", p["delivered"]),
        ("Read", p["read"]),
        ("Replied", p["replied"]),
    ]
    out, before = [], p["total"]
    for name, value in steps:
        out.append({"stage": name, "value": value, "of_total": _pct(value, p["total"]), "of_step": _pct(value, before)})
        before = value
    return out


# --- timeline ----------------------------------------------------------------------------------------


def _bucket_expr(session: Session, column, seconds: int):
    """The integer epoch bucket of a timestamp column, in SQL (SQLite stores UTC text, PostgreSQL timestamptz)."""
    if session.get_bind().dialect.name == "sqlite":
        epoch = cast(func.strftime("%s", column), Integer)
    else:
        epoch = cast(func.floor(func.extract("epoch", column)), Integer)
    return cast(func.floor(epoch / seconds), Integer) if seconds > 1 else epoch


def _span(session: Session, campaign_id: int) -> tuple[datetime | None, datetime | None]:
    r = CampaignRecipient
    row = session.execute(
        select(
            func.min(func.coalesce(r.sent_at, r.failed_at)),
            func.max(func.coalesce(r.read_at, r.delivered_at, r.failed_at, r.sent_at)),
        ).where(r.campaign_id == campaign_id)
    ).one()
    return row[0], row[1]


def _label(epoch_s: int, seconds: int) -> str:
    at = datetime.fromtimestamp(epoch_s, tz=utcnow().tzinfo)
    if seconds < 60:
        return at.strftime("%H:%M:%S")
    if seconds < 24 * 3600:
        return at.strftime("%H:%M")
    return at.strftime("%d %b")


def _bucket_counts(session: Session, campaign_id: int, seconds: int, since: datetime | None) -> dict[int, dict]:
    r = CampaignRecipient
    counts: dict[int, dict] = {}
    for name, column in _SERIES_COLUMNS.items():
        bucket = _bucket_expr(session, column, seconds)
        query = select(bucket, func.count()).where(r.campaign_id == campaign_id, column.is_not(None))
        if since is not None:
            # Only rows changed since then (index on campaign_id, updated_at), then their stamps in the window.
            query = query.where(r.updated_at >= since, column >= since)
        for key, n in session.execute(query.group_by(bucket)).all():
            if key is None:
                continue
            counts.setdefault(int(key), dict.fromkeys(TIMELINE_SERIES, 0))[name] = int(n)
    return counts


def timeline(*, session: Session, actor, campaign_id, live: bool | None = None) -> dict:
    """{"unit": "second"|"minute"|..., "points": [{"t", "sent", "delivered", "read", "failed"}]}: per
    second over the last two minutes while the campaign sends, else over the whole campaign."""
    require(session, actor, perm.CAMPAIGNS_VIEW)
    c = _campaign(session, campaign_id)
    live = c.status == SENDING if live is None else live
    if live:
        seconds = 1
        now = utcnow()
        since = now - timedelta(seconds=LIVE_WINDOW_S)
        counts = _bucket_counts(session, c.id, 1, since)
        first, last = int(since.timestamp()) + 1, int(now.timestamp())
    else:
        start, end = _span(session, c.id)
        if start is None or end is None:
            return {"unit": "minute", "points": []}
        span = (end - start).total_seconds()
        seconds = next((s for s in _BUCKETS_S if span / s <= MAX_POINTS), _BUCKETS_S[-1])
        counts = _bucket_counts(session, c.id, seconds, None)
        if not counts:
            return {"unit": "minute", "points": []}
        first, last = min(counts), max(counts)
        first, last = first * seconds, last * seconds
    step = seconds
    points = []
    # Every bucket of the range, empty ones included, so the line does not jump over quiet minutes.
    for epoch in range(first - first % step, last + 1, step):
        values = counts.get(epoch // step if step > 1 else epoch, dict.fromkeys(TIMELINE_SERIES, 0))
        points.append({"t": _label(epoch, step), **values})
    return {"unit": _unit(seconds), "points": points}


def _unit(seconds: int) -> str:
    if seconds in (1, 60, 3600):
        return {1: "second", 60: "minute", 3600: "hour"}[seconds]
    if seconds < 60:
        return f"{seconds} seconds"
    return f"{seconds // 60} minutes" if seconds < 3600 else f"{seconds // 3600} hours"


# --- failure reasons -----------------------------------------------------------------------------------


def failure_reasons(*, session: Session, actor, campaign_id, limit: int = TOP_FAILURES) -> list[dict]:
    """The top error codes of the failed (or held back) recipients: Meta's title, how many, and what to do."""
    require(session, actor, perm.CAMPAIGNS_VIEW)
    c = _campaign(session, campaign_id)
    r = CampaignRecipient
    n = func.count().label("n")
    rows = session.execute(
        select(r.error_code, func.max(r.error_title), n)
        .where(r.campaign_id == c.id, r.status.in_(HELD_BACK))
        .group_by(r.error_code)
        .order_by(n.desc(), r.error_code)
        .limit(limit)
    ).all()
    failed = session.execute(
        select(func.count()).select_from(r).where(r.campaign_id == c.id, r.status.in_(HELD_BACK))
    ).scalar_one()
    return [
        {
            "code": "" if code is None else str(code),
            # What Meta said in the webhook or the API answer, else its documented title for the code.
            "title": (title or "") or wa_errors.META_ERROR_TITLES.get(code, "") if code is not None else "No answer",
            "recipients": int(count),
            "share": _pct(int(count), failed),
            "hint": failure_hint(code),
            "resend_later": "yes" if code in RESEND_LATER_CODES else "",
        }
        for code, title, count in rows
    ]


# --- countries ---------------------------------------------------------------------------------------


def _country(sample: str) -> tuple[str, str]:
    try:
        number = phonenumbers.parse(sample, None)
    except phonenumbers.NumberParseException:
        return "", "Unknown"
    region = phonenumbers.region_code_for_number(number) or phonenumbers.region_code_for_country_code(
        number.country_code
    )
    if not region or region == "ZZ":
        return "", "Unknown"
    return region, geocoder.country_name_for_number(number, "en") or region


def countries(*, session: Session, actor, campaign_id, limit: int = TOP_COUNTRIES) -> list[dict]:
    """Recipients per country (from the number) with delivery and read rates, largest first."""
    require(session, actor, perm.CAMPAIGNS_VIEW)
    c = _campaign(session, campaign_id)
    r = CampaignRecipient
    prefix = func.substr(r.address, 1, _PREFIX_LEN)
    delivered = func.sum(case((r.status.in_((R_DELIVERED, R_READ)), 1), else_=0))
    read = func.sum(case((r.status == R_READ, 1), else_=0))
    sent = func.sum(case((r.status.in_((R_SENT, R_DELIVERED, R_READ)), 1), else_=0))
    failed = func.sum(case((r.status.in_(HELD_BACK), 1), else_=0))
    rows = session.execute(
        select(prefix, func.min(r.address), func.count(), sent, delivered, read, failed)
        .where(r.campaign_id == c.id)
        .group_by(prefix)
    ).all()
    totals: dict[str, dict] = {}
    for _prefix, sample, total, n_sent, n_delivered, n_read, n_failed in rows:
        region, name = _country(sample)
        entry = totals.setdefault(
            region or "?",
            {"code": region, "country": name, "recipients": 0, "sent": 0, "delivered": 0, "read": 0, "failed": 0},
        )
        entry["recipients"] += int(total)
        entry["sent"] += int(n_sent or 0)
        entry["delivered"] += int(n_delivered or 0)
        entry["read"] += int(n_read or 0)
        entry["failed"] += int(n_failed or 0)
    ordered = sorted(totals.values(), key=lambda e: (-e["recipients"], e["country"]))[:limit]
    for e in ordered:
        e["delivered_rate"] = _pct(e["delivered"], e["recipients"])
        e["read_rate"] = _pct(e["read"], e["recipients"])
    return ordered


def insight(*, session: Session, actor, campaign_id, everything: bool = True) -> dict:
    """What the campaign page's insight section shows, in one read. While a campaign sends the page
    polls every second: then `everything=False` reads only the funnel (counters) and the per-second
    timeline (a bounded window); the whole-campaign groupings are read every few seconds."""
    require(session, actor, perm.CAMPAIGNS_VIEW)
    c = _campaign(session, campaign_id)
    out = {"funnel": funnel(c), "timeline": timeline(session=session, actor=actor, campaign_id=c.id)}
    if everything:
        out["failures"] = failure_reasons(session=session, actor=actor, campaign_id=c.id)
        out["countries"] = countries(session=session, actor=actor, campaign_id=c.id)
        out["replies"] = replies.replies_page(session=session, actor=actor, campaign_id=c.id).rows
        out["buttons"] = replies.button_counts(session=session, actor=actor, campaign_id=c.id)
    return out
