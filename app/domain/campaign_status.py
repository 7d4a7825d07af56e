"""Campaign and recipient status machines (SPEC S16) as explicit transition tables."""

from __future__ import annotations

DRAFT, SCHEDULED, SENDING, PAUSED, SENT, FAILED, CANCELLED = (
    "draft",
    "scheduled",
    "sending",
    "paused",
    "sent",
    "failed",
    "cancelled",
)
CAMPAIGN_STATUSES = (DRAFT, SCHEDULED, SENDING, PAUSED, SENT, FAILED, CANCELLED)
STATUS_LABELS = {
    DRAFT: "Draft",
    SCHEDULED: "Scheduled",
    SENDING: "Sending",
    PAUSED: "Paused",
    SENT: "Sent",
    FAILED: "Failed",
    CANCELLED: "Cancelled",
}

_TRANSITIONS: dict[str, frozenset[str]] = {
    DRAFT: frozenset({SCHEDULED, SENDING}),
    # back to draft = edit / reschedule; paused = held at its time, e.g. its scheduler was deactivated
    SCHEDULED: frozenset({DRAFT, SENDING, PAUSED, CANCELLED}),
    SENDING: frozenset({PAUSED, SENT, FAILED, CANCELLED}),
    PAUSED: frozenset({SENDING, CANCELLED, FAILED}),
    SENT: frozenset(),
    FAILED: frozenset(),
    CANCELLED: frozenset(),
}


class IllegalTransition(ValueError):
    pass


def can_transition(current: str, target: str) -> bool:
    return target in _TRANSITIONS.get(current, frozenset())


def check_transition(current: str, target: str) -> None:
    if not can_transition(current, target):
        raise IllegalTransition(
            f"A {STATUS_LABELS.get(current, current)} campaign cannot become {STATUS_LABELS.get(target, target)}."
        )


# Recipients: statuses only move forward; failed is terminal; `unknown` marks a send whose outcome a
# crash made ambiguous (never blindly resent; reconciled by webhook when one arrives).
R_QUEUED, R_SENDING, R_SENT, R_DELIVERED, R_READ, R_FAILED, R_UNKNOWN, R_SKIPPED = (
    "queued",
    "sending",
    "sent",
    "delivered",
    "read",
    "failed",
    "unknown",
    "skipped",
)
# Meta's per-user marketing limit (131049) held the message back: its own outcome, not a failure (terminal for
# this campaign; a later campaign may try the person again). app/domain/messaging_limits.py.
R_LIMITED = "limited"
# The names users know for a recipient's status: the campaign page's cards, its recipients table and its
# status filter all read them from here (one table; "limited" is the card's "Limited by WhatsApp").
RECIPIENT_STATUS_LABELS = {
    R_QUEUED: "Queued",
    R_SENDING: "Sending",
    R_SENT: "Sent",
    R_DELIVERED: "Delivered",
    R_READ: "Read",
    R_FAILED: "Failed",
    R_UNKNOWN: "Unknown",
    R_SKIPPED: "Skipped",
    R_LIMITED: "Limited by WhatsApp",
}
_RECIPIENT_RANK = {R_QUEUED: 0, R_SENDING: 1, R_UNKNOWN: 2, R_SENT: 3, R_DELIVERED: 4, R_READ: 5}


def recipient_moves_forward(current: str, incoming: str) -> bool:
    """True when a status update must be applied (webhooks arrive duplicated and out of order)."""
    if current in (R_FAILED, R_SKIPPED, R_LIMITED):
        return False
    if incoming == R_FAILED:
        # A failure after delivery/read is not possible with Meta; keep the better state.
        return current not in (R_DELIVERED, R_READ)
    if incoming not in _RECIPIENT_RANK:
        return False
    return _RECIPIENT_RANK[incoming] > _RECIPIENT_RANK.get(current, -1)
