"""A campaign's insight (issue 15): the delivery funnel, the timeline, failure reasons and countries.

Everything is an aggregate the database computes over one campaign's recipient rows, never rows
carried into Python, so the page can poll it while a 500,000-recipient campaign sends:
- the funnel reads the denormalised counters (`results.progress`), like the cards;
- the timeline while sending is per second over the last `LIVE_WINDOW_S` seconds, reading only the
  rows whose `updated_at` falls in that window (index `ix_recipient_campaign_updated`, migration 0010:
  every timestamp of a row is at most its `updated_at`); after sending it is per minute over the whole
  campaign (a wider bucket when the campaign spans more than `MAX_BUCKETS` minutes);
- failure reasons group the `failed` rows (index `ix_recipient_campaign_status_address`) by Meta's code;
- countries group by status and the number's first digits (enough to tell a calling code and a North
  American area code apart) from that same index alone (migration 0015), and name each group's country
  with phonenumbers from one of its numbers (a few groups, not every number);
- the timeline after sending is one pass over the campaign's rows grouped by the buckets of all four
  stamps at once; replies come from their own index (`replies`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import phonenumbers
from phonenumbers import geocoder
from sqlalchemy import Integer, cast, func, literal_column, select
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
_UNIX_EPOCH_JULIAN_DAY = 2440587.5
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
    """The integer epoch bucket (epoch seconds // `seconds`) of a timestamp column, in SQL. SQLite stores UTC
    text: julianday() parses it to the millisecond and is much cheaper than strftime('%s'); the 0.1 ms added
    keeps a whole second from rounding down to the one before. PostgreSQL stores timestamptz."""
    if session.get_bind().dialect.name == "sqlite":
        # CAST truncates, which is floor for epochs after 1970 (and NULL stays NULL).
        days = func.julianday(column) - literal_column(repr(_UNIX_EPOCH_JULIAN_DAY))
        return cast(
            (days * literal_column("86400.0") + literal_column("0.0001")) / literal_column(str(seconds)), Integer
        )
    return cast(func.floor(func.extract("epoch", column) / literal_column(str(seconds))), Integer)


def _span(session: Session, campaign: Campaign) -> tuple[datetime | None, datetime | None]:
    """Bounds of the campaign's stamps, to choose the bucket: from its start (or its first stamp) to the
    last change of any of its rows (every stamp of a row is at most its updated_at), both read from an
    index or the campaign row; the points shown start and end at the first and last non-empty bucket."""
    r = CampaignRecipient
    end = session.execute(select(func.max(r.updated_at)).where(r.campaign_id == campaign.id)).scalar_one()
    start = campaign.started_at
    if start is None:
        start = session.execute(
            select(func.min(func.coalesce(r.sent_at, r.failed_at))).where(r.campaign_id == campaign.id)
        ).scalar_one()
    return start, end


def _label(epoch_s: int, seconds: int) -> str:
    at = datetime.fromtimestamp(epoch_s, tz=utcnow().tzinfo)
    if seconds < 60:
        return at.strftime("%H:%M:%S")
    if seconds < 24 * 3600:
        return at.strftime("%H:%M")
    return at.strftime("%d %b")


def _bucket_counts(session: Session, campaign_id: int, seconds: int, since: datetime | None) -> dict[int, dict]:
    """{bucket: {series: count}} in one pass over the rows: grouped by the buckets of all four stamps at once
    (a row's stamps fall in few combinations of buckets, so the groups stay few), then summed per series."""
    r = CampaignRecipient
    buckets = [_bucket_expr(session, column, seconds).label(f"b_{name}") for name, column in _SERIES_COLUMNS.items()]
    query = select(*buckets, func.count()).where(r.campaign_id == campaign_id)
    floor = None
    if since is not None:
        # Only rows changed since then (index on campaign_id, updated_at), then their stamps in the window.
        query = query.where(r.updated_at >= since)
        floor = int(since.timestamp()) // seconds
    counts: dict[int, dict] = {}
    grouped = query.group_by(*(literal_column(b.name) for b in buckets))
    for *keys, n in session.execute(grouped).all():
        for name, key in zip(TIMELINE_SERIES, keys, strict=True):
            if key is None or (floor is not None and key < floor):
                continue
            entry = counts.setdefault(int(key), dict.fromkeys(TIMELINE_SERIES, 0))
            entry[name] += int(n)
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
        start, end = _span(session, c)
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


def _of(by_status: dict[str, int], statuses) -> int:
    return sum(by_status.get(s, 0) for s in statuses)


def countries(*, session: Session, actor, campaign_id, limit: int = TOP_COUNTRIES) -> list[dict]:
    """Recipients per country (from the number) with delivery and read rates, largest first. Counted per
    (status, first digits) from the index on (campaign_id, status, address) alone, summed here."""
    require(session, actor, perm.CAMPAIGNS_VIEW)
    c = _campaign(session, campaign_id)
    r = CampaignRecipient
    prefix = func.substr(r.address, 1, _PREFIX_LEN)
    rows = session.execute(
        select(r.status, prefix, func.min(r.address), func.count())
        .where(r.campaign_id == c.id)
        .group_by(r.status, prefix)
    ).all()
    samples: dict[str, str] = {}
    by_prefix: dict[str, dict[str, int]] = {}
    for status, first_digits, sample, n in rows:
        samples[first_digits] = min(sample, samples.get(first_digits, sample))
        by_status = by_prefix.setdefault(first_digits, {})
        by_status[status] = by_status.get(status, 0) + int(n)
    totals: dict[str, dict] = {}
    for first_digits, by_status in by_prefix.items():
        region, name = _country(samples[first_digits])
        entry = totals.setdefault(
            region or "?",
            {"code": region, "country": name, "recipients": 0, "sent": 0, "delivered": 0, "read": 0, "failed": 0},
        )
        entry["recipients"] += sum(by_status.values())
        entry["sent"] += _of(by_status, (R_SENT, R_DELIVERED, R_READ))
        entry["delivered"] += _of(by_status, (R_DELIVERED, R_READ))
        entry["read"] += _of(by_status, (R_READ,))
        entry["failed"] += _of(by_status, HELD_BACK)
    ordered = sorted(totals.values(), key=lambda e: (-e["recipients"], e["country"]))[:limit]
    for e in ordered:
        e["delivered_rate"] = _pct(e["delivered"], e["recipients"])
        e["read_rate"] = _pct(e["read"], e["recipients"])
    return ordered


def replies_view(page) -> dict:
    """A page of replies as the campaign page shows it: rows, the page and "x–y of N" (`replies.replies_page`)."""
    first = (page.page - 1) * page.page_size + 1
    last = min(page.page * page.page_size, page.total)
    return {
        "rows": page.rows,
        "page": page.page,
        "pages": page.pages,
        "total": page.total,
        "range": f"{first:,}–{last:,} of {page.total:,}" if page.total else "",
    }


def insight(*, session: Session, actor, campaign_id, everything: bool = True, replies_page: int = 1) -> dict:
    """What the campaign page's insight section shows, in one read. While a campaign sends the page
    polls every second: then `everything=False` reads only the funnel (counters) and the per-second
    timeline (a bounded window); the whole-campaign groupings are read every few seconds. `replies_page`:
    the page of replies the user is on (newest first)."""
    require(session, actor, perm.CAMPAIGNS_VIEW)
    c = _campaign(session, campaign_id)
    out = {"funnel": funnel(c), "timeline": timeline(session=session, actor=actor, campaign_id=c.id)}
    if everything:
        out["failures"] = failure_reasons(session=session, actor=actor, campaign_id=c.id)
        out["countries"] = countries(session=session, actor=actor, campaign_id=c.id)
        out["replies"] = replies_view(
            replies.replies_page(session=session, actor=actor, campaign_id=c.id, page=replies_page)
        )
        out["buttons"] = replies.button_counts(session=session, actor=actor, campaign_id=c.id)
    return out
