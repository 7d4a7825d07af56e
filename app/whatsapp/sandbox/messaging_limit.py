"""The Sandbox's daily messaging limit: Meta's tier (unique people per rolling window) enforced like Meta does.

`messaging_limit` (0: unlimited) and `messaging_window_s` are Sandbox settings (`--messaging-limit 20`, or
POST /_sandbox/config at runtime), so a test can give a number a tiny tier and a window of seconds. A
template message to someone not messaged within the window, past the limit, is refused with #131048 (Meta's
"spam rate limit hit", what a number over its limit gets); the phone number advertises its tier as
`messaging_limit_tier` ("TIER_250", "TIER_2K", ..., or "TIER_<n>" for a test's odd limit).
"""

from __future__ import annotations

import time
from collections import OrderedDict

_NAMED = {250: "TIER_250", 1000: "TIER_1K", 2000: "TIER_2K", 10_000: "TIER_10K", 100_000: "TIER_100K"}


def tier_name(limit: int) -> str:
    if limit <= 0:
        return "TIER_UNLIMITED"
    return _NAMED.get(limit, f"TIER_{limit}")


class DailyLimit:
    """Who got a template message within the window, oldest first (pruned as it goes: O(1) per send)."""

    def __init__(self) -> None:
        self.last: OrderedDict[str, float] = OrderedDict()

    def admit(self, wa_id: str, limit: int, window_s: float, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        while self.last:
            first, at = next(iter(self.last.items()))
            if at > now - window_s:
                break
            self.last.popitem(last=False)
        if wa_id in self.last or limit <= 0 or len(self.last) < limit:
            self.last[wa_id] = now
            self.last.move_to_end(wa_id)
            return True
        return False

    def clear(self) -> None:
        self.last.clear()
