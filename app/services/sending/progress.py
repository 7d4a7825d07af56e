"""A campaign's progress, computed from its recipient rows (the source of truth).

Called by the sending workers after each chunk, by the sweeper, and by webhook ingestion after it
applies statuses. Both functions are cheap (one aggregate query over the (campaign_id, status)
index) and safe to call from several processes at once: counters are recomputed, never incremented,
and the final status change is a conditional UPDATE, so two callers cannot both finish a campaign.

Counters are per current status, so they always add up to `total_recipients`:
- `queued_count` = queued + sending (not yet handed to WhatsApp);
- `sent_count`, `delivered_count`, `read_count` = rows whose latest status is exactly that one;
- `failed_count` = failed + skipped (skipped rows were never sent: a missing variable value; their
  error title says why);
- `unknown_count` = a crash made the outcome ambiguous; never resent;
- `limited_count` = "limited by WhatsApp": Meta's per-user marketing limit (131049) held the message back;
  not a failure, and a later campaign may try the person again.
`replied_count` belongs to inbound-message handling and is left alone here.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlmodel import Session

from app.domain.campaign_status import (
    FAILED,
    R_DELIVERED,
    R_FAILED,
    R_LIMITED,
    R_QUEUED,
    R_READ,
    R_SENDING,
    R_SENT,
    R_SKIPPED,
    R_UNKNOWN,
    SENDING,
    SENT,
    check_transition,
)
from app.models import Campaign, CampaignRecipient
from app.timeutil import utcnow

# Rows that still need work from a sender. Everything else counts as done for completion
# ("sent" means handed to WhatsApp; delivery/read arrive later by webhook).
PENDING_STATUSES = frozenset({R_QUEUED, R_SENDING})
# Rows that may have reached the person: if there is none, the campaign failed.
REACHED_STATUSES = frozenset({R_SENT, R_DELIVERED, R_READ, R_UNKNOWN})


def _take_write_lock(session: Session, campaign_id: int, now: datetime) -> None:
    """Write before reading: on SQLite a transaction that reads first and writes later fails
    (SQLITE_BUSY, stale snapshot) if another process wrote in between; writing first takes the
    lock up front (busy_timeout then waits for it). On PostgreSQL it locks the campaign row, which
    serialises concurrent finishers as well."""
    session.execute(update(Campaign).where(Campaign.id == campaign_id).values(updated_at=now))


def status_counts(session: Session, campaign_id: int) -> dict[str, int]:
    """{recipient status: number of rows} for one campaign, in one query."""
    rows = session.execute(
        select(CampaignRecipient.status, func.count())
        .where(CampaignRecipient.campaign_id == campaign_id)
        .group_by(CampaignRecipient.status)
    ).all()
    return {status: int(n) for status, n in rows}


def counters_from(counts: dict[str, int]) -> dict[str, int]:
    """The Campaign counter columns for these per-status counts (see the module docstring)."""
    return {
        "total_recipients": sum(counts.values()),
        "queued_count": counts.get(R_QUEUED, 0) + counts.get(R_SENDING, 0),
        "sent_count": counts.get(R_SENT, 0),
        "delivered_count": counts.get(R_DELIVERED, 0),
        "read_count": counts.get(R_READ, 0),
        "failed_count": counts.get(R_FAILED, 0) + counts.get(R_SKIPPED, 0),
        "unknown_count": counts.get(R_UNKNOWN, 0),
        "limited_count": counts.get(R_LIMITED, 0),
    }


def refresh_counters(session: Session, campaign_id: int) -> None:
    """Recompute the campaign's denormalised counters from its recipient rows (caller commits)."""
    _take_write_lock(session, campaign_id, utcnow())
    values = counters_from(status_counts(session, campaign_id))
    session.execute(update(Campaign).where(Campaign.id == campaign_id).values(**values, updated_at=utcnow()))


def finish_if_done(session: Session, campaign_id: int, *, now: datetime | None = None) -> bool:
    """Sending → Sent when no row is queued or sending and the audience freeze is complete; → Failed when
    none could be sent.

    Returns True when this call finished the campaign. Only a Sending campaign finishes (a paused
    one waits for resume; a cancelled one is already final). Refreshes the counters as a side effect,
    so the final numbers are exact. The caller commits.
    """
    _take_write_lock(session, campaign_id, now or utcnow())
    counts = status_counts(session, campaign_id)
    session.execute(
        update(Campaign).where(Campaign.id == campaign_id).values(**counters_from(counts), updated_at=now or utcnow())
    )
    if not counts or any(counts.get(s, 0) for s in PENDING_STATUSES):
        return False
    if session.execute(select(Campaign.freezing).where(Campaign.id == campaign_id)).scalar():
        return False  # rows are still being frozen (freeze.py): more will come
    target = SENT if any(counts.get(s, 0) for s in REACHED_STATUSES) else FAILED
    check_transition(SENDING, target)
    result = session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.status == SENDING)
        .values(status=target, finished_at=now or utcnow(), updated_at=now or utcnow())
    )
    return result.rowcount == 1
