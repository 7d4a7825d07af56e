"""Campaign and recipient status machines (SPEC S16): the transition tables, not just a few moves."""

from __future__ import annotations

import itertools
import random

import pytest

from app.domain import campaign_status as cs
from app.domain.campaign_status import (
    CAMPAIGN_STATUSES,
    CANCELLED,
    DRAFT,
    FAILED,
    PAUSED,
    R_DELIVERED,
    R_FAILED,
    R_QUEUED,
    R_READ,
    R_SENDING,
    R_SENT,
    R_SKIPPED,
    R_UNKNOWN,
    SCHEDULED,
    SENDING,
    SENT,
    IllegalTransition,
    can_transition,
    check_transition,
    recipient_moves_forward,
)

# The whole legal table, written out independently of the module's own table.
LEGAL = {
    (DRAFT, SCHEDULED),
    (DRAFT, SENDING),
    (SCHEDULED, DRAFT),
    (SCHEDULED, SENDING),
    (SCHEDULED, CANCELLED),
    (SCHEDULED, PAUSED),  # held at its time: its scheduler was deactivated (issue 13 item 16)
    (SENDING, PAUSED),
    (SENDING, SENT),
    (SENDING, FAILED),
    (SENDING, CANCELLED),
    (PAUSED, SENDING),
    (PAUSED, CANCELLED),
    (PAUSED, FAILED),
}
ALL_PAIRS = list(itertools.product(CAMPAIGN_STATUSES, repeat=2))
ILLEGAL = [pair for pair in ALL_PAIRS if pair not in LEGAL]


def test_statuses_and_labels():
    assert set(CAMPAIGN_STATUSES) == {"draft", "scheduled", "sending", "paused", "sent", "failed", "cancelled"}
    assert set(cs.STATUS_LABELS) == set(CAMPAIGN_STATUSES)


@pytest.mark.parametrize(("current", "target"), sorted(LEGAL), ids=lambda s: s)
def test_legal_moves(current, target):
    assert can_transition(current, target)
    check_transition(current, target)  # does not raise


@pytest.mark.parametrize(("current", "target"), ILLEGAL, ids=lambda s: s)
def test_illegal_moves(current, target):
    assert not can_transition(current, target)
    with pytest.raises(IllegalTransition):
        check_transition(current, target)


@pytest.mark.parametrize("status", [SENT, FAILED, CANCELLED])
def test_final_statuses_go_nowhere(status):
    assert not any(can_transition(status, target) for target in CAMPAIGN_STATUSES)


def test_no_status_moves_to_itself():
    assert not any(can_transition(s, s) for s in CAMPAIGN_STATUSES)


def test_sent_campaign_cannot_be_sent_again_or_edited():
    assert not can_transition(SENT, SENDING)
    assert not can_transition(SENT, DRAFT)
    assert not can_transition(SENDING, DRAFT)  # editing happens only before sending starts


def test_check_transition_message_names_both_statuses():
    with pytest.raises(IllegalTransition) as exc:
        check_transition(SENT, SENDING)
    assert str(exc.value) == "A Sent campaign cannot become Sending."
    with pytest.raises(IllegalTransition) as exc:
        check_transition(CANCELLED, SCHEDULED)
    assert str(exc.value) == "A Cancelled campaign cannot become Scheduled."


def test_illegal_transition_is_a_value_error():
    assert issubclass(IllegalTransition, ValueError)


def test_unknown_statuses_are_refused_with_a_readable_message():
    assert not can_transition("bogus", DRAFT)
    assert not can_transition(DRAFT, "bogus")
    with pytest.raises(IllegalTransition, match="A Draft campaign cannot become bogus."):
        check_transition(DRAFT, "bogus")
    with pytest.raises(IllegalTransition, match="A bogus campaign cannot become Draft."):
        check_transition("bogus", DRAFT)


# --- recipients ------------------------------------------------------------------------------

FORWARD_ORDER = [R_QUEUED, R_SENDING, R_UNKNOWN, R_SENT, R_DELIVERED, R_READ]
RECIPIENT_STATUSES = [*FORWARD_ORDER, R_FAILED, R_SKIPPED]


def _apply(current: str, incoming: str) -> str:
    return incoming if recipient_moves_forward(current, incoming) else current


@pytest.mark.parametrize(("i", "j"), [(i, j) for i in range(6) for j in range(6)])
def test_recipient_only_moves_forward(i, j):
    current, incoming = FORWARD_ORDER[i], FORWARD_ORDER[j]
    assert recipient_moves_forward(current, incoming) is (j > i)


@pytest.mark.parametrize("status", RECIPIENT_STATUSES)
def test_duplicate_status_is_never_reapplied(status):
    assert not recipient_moves_forward(status, status)


def test_webhook_sequence_sent_delivered_read():
    status = R_SENDING
    for incoming in (R_SENT, R_DELIVERED, R_READ):
        assert recipient_moves_forward(status, incoming)
        status = incoming
    assert status == R_READ


@pytest.mark.parametrize("late", [R_SENT, R_DELIVERED, R_QUEUED, R_SENDING, R_UNKNOWN, R_FAILED])
def test_read_is_final(late):
    assert not recipient_moves_forward(R_READ, late)


@pytest.mark.parametrize("late", [R_SENT, R_QUEUED, R_SENDING, R_UNKNOWN, R_FAILED])
def test_late_sent_after_delivered_is_ignored(late):
    assert not recipient_moves_forward(R_DELIVERED, late)


@pytest.mark.parametrize("incoming", RECIPIENT_STATUSES)
def test_failed_is_terminal(incoming):
    assert not recipient_moves_forward(R_FAILED, incoming)


@pytest.mark.parametrize("incoming", RECIPIENT_STATUSES)
def test_skipped_is_terminal(incoming):
    assert not recipient_moves_forward(R_SKIPPED, incoming)


@pytest.mark.parametrize("current", [R_QUEUED, R_SENDING, R_UNKNOWN, R_SENT])
def test_failure_applies_before_delivery(current):
    assert recipient_moves_forward(current, R_FAILED)


@pytest.mark.parametrize("current", [R_DELIVERED, R_READ])
def test_failure_after_delivery_keeps_the_better_state(current):
    assert not recipient_moves_forward(current, R_FAILED)


def test_unknown_is_reconciled_by_a_later_webhook():
    assert recipient_moves_forward(R_UNKNOWN, R_SENT)
    assert recipient_moves_forward(R_UNKNOWN, R_DELIVERED)
    assert recipient_moves_forward(R_UNKNOWN, R_FAILED)
    assert not recipient_moves_forward(R_SENT, R_UNKNOWN)


def test_unrecognised_incoming_status_is_ignored():
    for current in RECIPIENT_STATUSES:
        assert not recipient_moves_forward(current, "deleted")
        assert not recipient_moves_forward(current, "")


@pytest.mark.parametrize("seed", range(25))
def test_out_of_order_and_duplicated_webhooks_end_at_the_best_state(seed):
    """Any shuffle (with duplicates) of sent/delivered/read ends at `read`, never moving backwards."""
    rng = random.Random(seed)
    events = [R_SENT, R_DELIVERED, R_READ] * 2 + [rng.choice([R_SENT, R_DELIVERED]) for _ in range(3)]
    rng.shuffle(events)
    status = R_SENDING
    for incoming in events:
        new = _apply(status, incoming)
        assert FORWARD_ORDER.index(new) >= FORWARD_ORDER.index(status)
        status = new
    assert status == R_READ


@pytest.mark.parametrize("seed", range(10))
def test_failure_before_any_delivery_stays_failed(seed):
    rng = random.Random(seed)
    events = [R_FAILED, R_SENT, R_SENT, R_FAILED]
    rng.shuffle(events)
    status = R_SENDING
    seen_failed = False
    for incoming in events:
        status = _apply(status, incoming)
        seen_failed = seen_failed or status == R_FAILED
        if seen_failed:
            assert status == R_FAILED
    assert status == R_FAILED


def test_every_recipient_status_has_one_capitalised_name_and_is_a_filter():
    """One table of names (the cards, the recipients table and its filter read it): every status, capitalised."""
    from app.services.campaigns.results import RECIPIENT_FILTERS

    statuses = {R_QUEUED, R_SENDING, R_SENT, R_DELIVERED, R_READ, R_FAILED, R_UNKNOWN, R_SKIPPED, cs.R_LIMITED}
    assert set(cs.RECIPIENT_STATUS_LABELS) == statuses == set(RECIPIENT_FILTERS)
    assert all(label[0].isupper() for label in cs.RECIPIENT_STATUS_LABELS.values())
    assert cs.RECIPIENT_STATUS_LABELS[cs.R_LIMITED] == "Limited by WhatsApp"
