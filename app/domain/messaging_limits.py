"""Meta's daily messaging limit and the per-user marketing limit, as pure rules (no I/O).

- A WhatsApp number's *tier* ("TIER_250", "TIER_2K", "TIER_10K", "TIER_100K", "TIER_UNLIMITED"; older
  accounts also "TIER_50" / "TIER_1K") caps how many *unique users* a business may start conversations with
  (business-initiated = template messages) in a rolling 24 hours. Since October 2025 the cap belongs to the
  business portfolio: every number of one portfolio shares it, so the count runs across its channels.
- `tier_limit` turns a tier into its number of users (None: unlimited); unknown text is refused with a
  clear error. The Sandbox may advertise any "TIER_<n>" (tests use a tiny one).
- `quota_left` / `quota_plan` are the arithmetic the review step and the engine share.
- 131049 ("not delivered to maintain healthy ecosystem engagement") is Meta's per-user marketing limit: not
  a failure of the message or of the number, and the same person can be tried again by a later campaign,
  so it is its own recipient outcome (`failure_status`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.domain.campaign_status import R_FAILED, R_LIMITED

LIMITED_LABEL = "Limited by WhatsApp"
LIMITED_BY_WHATSAPP_CODES = frozenset({131049})
# What a row held back by the daily messaging limit shows while it waits.
QUOTA_WAIT_TITLE = "Waiting for quota: the daily messaging limit is reached; sent as the 24-hour window frees"
FREQUENCY_CAP_TITLE = "Frequency cap: this contact got a marketing message from another campaign recently"

UNLIMITED = "TIER_UNLIMITED"
_TIER = re.compile(r"^TIER_(\d+)([KM]?)$")
_SUFFIX = {"": 1, "K": 1_000, "M": 1_000_000}


class TierError(ValueError):
    pass


def normalise_tier(tier: str | None) -> str:
    """'tier_2k' -> 'TIER_2K'; '' stays '' (not known yet); raises TierError for anything else."""
    text = str(tier or "").strip().upper()
    if not text:
        return ""
    if text != UNLIMITED and not _TIER.match(text):
        raise TierError(f"Unknown messaging limit tier {tier!r}: expected TIER_250, TIER_2K, ..., TIER_UNLIMITED.")
    return text


def tier_limit(tier: str | None) -> int | None:
    """Unique users per rolling 24 h for a tier; None when unlimited or not known (nothing to hold back)."""
    text = normalise_tier(tier)
    if not text or text == UNLIMITED:
        return None
    match = _TIER.match(text)
    assert match is not None
    return int(match.group(1)) * _SUFFIX[match.group(2)]


def tier_label(tier: str | None) -> str:
    limit = tier_limit(tier)
    if limit is None:
        return "unlimited" if normalise_tier(tier) == UNLIMITED else "not known yet"
    return f"{limit:,} people per 24 h"


def quota_left(limit: int | None, used: int) -> int | None:
    """Conversations still free in the window (None: unlimited)."""
    return None if limit is None else max(0, limit - max(0, used))


@dataclass(frozen=True)
class QuotaPlan:
    needed: int  # new conversations the campaign needs (people not already messaged in the window)
    left: int | None  # free now (None: unlimited)
    now: int  # sent at once
    waiting: int  # held back until the window frees


def quota_plan(needed: int, left: int | None) -> QuotaPlan:
    needed = max(0, needed)
    if left is None:
        return QuotaPlan(needed, None, needed, 0)
    now = min(needed, left)
    return QuotaPlan(needed, left, now, needed - now)


def failure_status(code: int | None) -> str:
    """The recipient status of a failed send with Meta's `code`: 'limited' for the per-user marketing limit."""
    return R_LIMITED if code in LIMITED_BY_WHATSAPP_CODES else R_FAILED
