"""What happened to each send, and writing it down.

`classify_error` turns a WhatsApp error into the row's next state:
retryable -> queued again with exponential backoff + jitter (failed after `max_attempts`);
rate-limited -> queued again without using an attempt (the caller also sets a shared cool-down);
Meta failing (5xx, 131000, 131016) for `outage_pause_s` -> queued again, attempt given back, and the
campaign pauses (`outage_reason`); a row on its last attempt while that lasts waits instead of failing;
permanent -> failed with Meta's code and title (131050 also unsubscribes the WhatsApp identity);
campaign-stopping (account-wide, or template-wide: issue 12) -> back to queued, and `stop_reason` pauses
the campaign with the reason shown;
ambiguous (a timeout after the request left) -> `unknown`, never resent.
`store_outcomes` writes a group of them in one transaction (one executemany per kind), with the
auto-pause when one is due; `error_ratio_reason` is the max-errors rule that triggers it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, case, func, insert, literal, update
from sqlalchemy.engine import Connection, Engine

from app.domain.campaign_status import PAUSED, R_QUEUED, R_SENDING, R_SENT, R_UNKNOWN, SENDING
from app.domain.messaging_limits import failure_status
from app.models import AuditLog, Campaign, CampaignRecipient, ContactIdentity
from app.services.sending.claims import Claimed, begin_write
from app.services.sending.config import SendingConfig
from app.whatsapp.errors import WhatsAppApiError

R = CampaignRecipient.__table__
C = Campaign.__table__
# The JobStats counter each outcome kind adds to.
STAT_FOR_KIND = {"sent": "sent", "failed": "failed", "retry": "retried", "unknown": "unknown", "requeue": "requeued"}

_rng = random.Random()


@dataclass
class Outcome:
    row: Claimed
    kind: str  # sent | retry | requeue | failed | unknown
    wamid: str = ""
    code: int | None = None
    title: str = ""
    next_attempt_at: datetime | None = None
    unsubscribe: bool = False
    held: bool = False  # sent, but WhatsApp holds it (held_for_quality_assessment / paused): pace the campaign


def backoff_delay(attempt: int, config: SendingConfig, rng: random.Random = _rng) -> float:
    """Exponential backoff with jitter: uniform(c/2, c) where c = min(cap, base * 2^(attempt-1)).
    ("Equal jitter": retries spread out, yet never come back almost at once.)"""
    ceiling = min(config.backoff_cap_s, config.backoff_base_s * (2 ** max(0, attempt - 1)))
    return max(0.5, rng.uniform(ceiling / 2, ceiling))


def error_title(exc: WhatsAppApiError) -> str:
    error = exc.error
    text = error.title or "Error"
    if error.details and error.details not in text:
        text = f"{text}: {error.details}"
    return text[:500]


def in_outage(outage_s: float | None, config: SendingConfig) -> bool:
    """Meta has been failing long enough that a row's failure says nothing about the row."""
    return outage_s is not None and outage_s >= min(config.outage_pause_s, config.backoff_base_s)


def classify_error(
    row: Claimed, exc: WhatsAppApiError, config: SendingConfig, now: datetime, outage_s: float | None = None
) -> Outcome:
    """The outcome of a send that raised `exc` (see the module docstring). `outage_s`: for how long
    Meta has been failing on this campaign without a success in between (None: not known)."""
    code, title, c = exc.code, error_title(exc), exc.classification
    if exc.ambiguous:
        return Outcome(
            row,
            "unknown",
            code=code,
            title=f"No answer from WhatsApp ({exc.error.title}); not resent, waiting for its status",
        )
    if c.stops_campaign:
        return Outcome(row, "requeue", code=code, title=title)  # not this person's fault; resume sends it
    if c.retryable:
        if c.rate_limited:
            delay = exc.retry_after or config.rate_limit_cooldown_s
            return Outcome(row, "requeue", code=code, title=title, next_attempt_at=now + timedelta(seconds=delay))
        if c.server_trouble and outage_s is not None and outage_s >= config.outage_pause_s:
            return Outcome(row, "requeue", code=code, title=title, next_attempt_at=now)  # the campaign pauses
        if row.attempts >= config.max_attempts:
            if c.server_trouble and in_outage(outage_s, config):  # Meta's incident, not this row: it waits
                delay = backoff_delay(row.attempts, config)
                return Outcome(row, "requeue", code=code, title=title, next_attempt_at=now + timedelta(seconds=delay))
            return Outcome(row, "failed", code=code, title=f"{title} (after {row.attempts} attempts)"[:500])
        delay = backoff_delay(row.attempts, config)
        return Outcome(row, "retry", code=code, title=title, next_attempt_at=now + timedelta(seconds=delay))
    return Outcome(row, "failed", code=code, title=title, unsubscribe=c.unsubscribe_contact)


def stop_reason(exc: WhatsAppApiError) -> str:
    """The pause reason when this (unambiguous) error must stop the whole campaign, else ''."""
    c = exc.classification
    if c.template_paused:
        return (
            f"The template cannot be sent: #{exc.code} {error_title(exc)}. Its messages wait: "
            "resume once WhatsApp approves the template again (it was re-synced)."
        )[:500]
    if c.stops_campaign:
        return (
            f"WhatsApp refused the campaign: #{exc.code} {error_title(exc)}"
            if exc.code is not None
            else f"WhatsApp refused the campaign: {error_title(exc)}"
        )
    return ""


def outage_reason(exc: WhatsAppApiError, seconds: float) -> str:
    """The pause reason when Meta has kept failing (5xx, 131000, 131016) for `seconds`."""
    code = f"#{exc.code} " if exc.code is not None else ""
    return (
        f"Paused automatically: WhatsApp has been failing for {seconds:.0f} s ({code}{error_title(exc)}). "
        "No message was lost: the rest wait. Resume when WhatsApp works again."
    )[:500]


def error_ratio_reason(stats: dict, config: SendingConfig) -> str:
    """A pause reason when too many attempted sends failed (listmonk's max-errors), else ''."""

    def _n(name: str) -> int:
        value = stats.get(name, stats.get(name.encode(), 0))
        return int(value or 0)

    attempted, failed = _n("attempted"), _n("failed")
    if attempted >= config.error_ratio_min_sample and failed > attempted * config.max_error_ratio:
        return (
            f"Paused automatically: {failed} of the last {attempted} messages failed "
            f"(more than {config.max_error_ratio:.0%}). Check the errors before resuming."
        )
    return ""


def store_outcomes(
    engine: Engine, campaign_id: int, outcomes: list[Outcome], now: datetime, pause_reason: str = ""
) -> None:
    """Write a group of outcomes in one transaction (one executemany per kind)."""
    by_kind: dict[str, list[Outcome]] = {}
    for o in outcomes:
        by_kind.setdefault(o.kind, []).append(o)
    with engine.connect() as conn:
        begin_write(conn)
        if by_kind.get("sent"):
            # A status webhook (matched by our callback data) may already have moved the row on.
            # (ORs, not IN: an expanding IN cannot be used with executemany)
            advance = (R.c.status == R_SENDING) | (R.c.status == R_UNKNOWN) | (R.c.status == R_QUEUED)
            conn.execute(
                update(R)
                .where(R.c.id == bindparam("rid"))
                .values(
                    message_id=func.coalesce(R.c.message_id, bindparam("wamid")),
                    status=case((advance, literal(R_SENT)), else_=R.c.status),
                    sent_at=func.coalesce(R.c.sent_at, bindparam("now")),
                    error_code=case((advance, literal(None)), else_=R.c.error_code),
                    error_title=case((advance, literal("")), else_=R.c.error_title),
                    updated_at=bindparam("now"),
                ),
                [{"rid": o.row.id, "wamid": o.wamid, "now": now} for o in by_kind["sent"]],
            )
        if by_kind.get("retry"):
            conn.execute(
                update(R)
                .where(R.c.id == bindparam("rid"), R.c.status == R_SENDING)
                .values(
                    status=R_QUEUED,
                    next_attempt_at=bindparam("nxt"),
                    error_code=bindparam("code"),
                    error_title=bindparam("title"),
                    updated_at=bindparam("now"),
                ),
                [
                    {"rid": o.row.id, "nxt": o.next_attempt_at, "code": o.code, "title": o.title, "now": now}
                    for o in by_kind["retry"]
                ],
            )
        if by_kind.get("requeue"):  # never attempted, or refused for throughput: the attempt is given back
            conn.execute(
                update(R)
                .where(R.c.id == bindparam("rid"), R.c.status == R_SENDING)
                .values(
                    status=R_QUEUED,
                    attempts=R.c.attempts - 1,
                    next_attempt_at=bindparam("nxt"),
                    updated_at=bindparam("now"),
                ),
                [{"rid": o.row.id, "nxt": o.next_attempt_at, "now": now} for o in by_kind["requeue"]],
            )
        if by_kind.get("failed"):
            conn.execute(
                update(R)
                .where(R.c.id == bindparam("rid"), R.c.status == R_SENDING)
                .values(
                    status=bindparam("st"),  # "limited" for Meta's per-user marketing limit (131049)
                    error_code=bindparam("code"),
                    error_title=bindparam("title"),
                    failed_at=bindparam("now"),
                    updated_at=bindparam("now"),
                ),
                [
                    {"rid": o.row.id, "st": failure_status(o.code), "code": o.code, "title": o.title, "now": now}
                    for o in by_kind["failed"]
                ],
            )
        if by_kind.get("unknown"):
            conn.execute(
                update(R)
                .where(R.c.id == bindparam("rid"), R.c.status == R_SENDING)
                .values(
                    status=R_UNKNOWN,
                    error_code=bindparam("code"),
                    error_title=bindparam("title"),
                    updated_at=bindparam("now"),
                ),
                [{"rid": o.row.id, "code": o.code, "title": o.title, "now": now} for o in by_kind["unknown"]],
            )
        unsubscribe = sorted({o.row.address for o in outcomes if o.unsubscribe})
        if unsubscribe:
            ident = ContactIdentity.__table__
            conn.execute(
                update(ident)
                .where(
                    ident.c.channel_type == "whatsapp", ident.c.address.in_(unsubscribe), ident.c.subscribed.is_(True)
                )
                .values(subscribed=False, subscription_changed_at=now)
            )
        if pause_reason:
            pause_campaign_conn(conn, campaign_id, pause_reason, now)
        conn.commit()


def pause_campaign_conn(conn: Connection, campaign_id: int, reason: str, now: datetime) -> bool:
    """Sending -> Paused with the reason shown, recorded in the audit log (no human actor)."""
    result = conn.execute(
        update(C)
        .where(C.c.id == campaign_id, C.c.status == SENDING)
        .values(status=PAUSED, pause_reason=reason[:500], updated_at=now)
    )
    if result.rowcount:
        conn.execute(
            insert(AuditLog.__table__).values(
                at=now,
                actor_id=None,
                actor_email="",
                action="campaign.auto_pause",
                outcome="ok",
                target_type="campaign",
                target_id=str(campaign_id),
                detail={"reason": reason[:500]},
                ip="",
            )
        )
    return bool(result.rowcount)
