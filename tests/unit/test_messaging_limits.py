"""Meta's daily messaging limit and per-user marketing limit as pure rules (app/domain/messaging_limits.py),
and the Sandbox's enforcement of a tier (app/whatsapp/sandbox/messaging_limit.py)."""

from __future__ import annotations

import pytest

from app.domain.campaign_status import R_LIMITED, recipient_moves_forward
from app.domain.messaging_limits import (
    TierError,
    failure_status,
    normalise_tier,
    quota_left,
    quota_plan,
    tier_label,
    tier_limit,
)
from app.whatsapp.sandbox.messaging_limit import DailyLimit, tier_name


@pytest.mark.parametrize(
    ("tier", "limit"),
    [
        ("TIER_250", 250),
        ("TIER_2K", 2000),
        ("tier_10k", 10_000),
        ("TIER_100K", 100_000),
        ("TIER_1K", 1000),
        ("TIER_50", 50),
        ("TIER_20", 20),
        ("TIER_UNLIMITED", None),
        ("", None),
        (None, None),
    ],
)
def test_tier_limits(tier, limit):
    assert tier_limit(tier) == limit


@pytest.mark.parametrize("bad", ["TIER_", "2K", "TIER_2X", "unlimited", "TIER_-5"])
def test_unknown_tiers_are_refused_with_a_clear_error(bad):
    with pytest.raises(TierError, match="Unknown messaging limit tier"):
        normalise_tier(bad)


def test_tier_labels_say_what_they_mean():
    assert tier_label("TIER_2K") == "2,000 people per 24 h"
    assert tier_label("TIER_UNLIMITED") == "unlimited"
    assert tier_label("") == "not known yet"


def test_quota_plan_holds_what_exceeds_the_quota():
    assert quota_left(250, 240) == 10
    assert quota_left(250, 400) == 0  # never negative, even when another tool overspent it
    assert quota_left(None, 5) is None
    plan = quota_plan(30, 12)
    assert (plan.needed, plan.left, plan.now, plan.waiting) == (30, 12, 12, 18)
    assert quota_plan(5, 12).waiting == 0
    unlimited = quota_plan(1_000_000, None)
    assert unlimited.now == 1_000_000 and unlimited.waiting == 0


def test_131049_is_its_own_outcome_and_terminal():
    assert failure_status(131049) == R_LIMITED
    assert failure_status(131026) == "failed"
    assert failure_status(None) == "failed"
    assert not recipient_moves_forward(R_LIMITED, "delivered")  # a late status never revives it
    assert not recipient_moves_forward(R_LIMITED, "failed")


def test_sandbox_tier_counts_unique_people_in_a_rolling_window():
    limit = DailyLimit()
    assert all(limit.admit(f"p{i}", 3, 10.0, now=0.0) for i in range(3))
    assert not limit.admit("p3", 3, 10.0, now=1.0)  # a 4th person within the window
    assert limit.admit("p1", 3, 10.0, now=2.0)  # someone already in the window costs nothing more
    assert limit.admit("p3", 3, 10.0, now=10.5)  # p0 and p2 left the window (p1 was messaged again at 2.0)
    assert limit.admit("p4", 3, 10.0, now=10.6)
    assert not limit.admit("p5", 3, 10.0, now=10.7)  # p1, p3, p4 in the window
    assert limit.admit("anyone", 0, 10.0, now=11.0)  # 0: unlimited
    assert tier_name(250) == "TIER_250" and tier_name(2000) == "TIER_2K" and tier_name(20) == "TIER_20"
    assert tier_name(0) == "TIER_UNLIMITED"
