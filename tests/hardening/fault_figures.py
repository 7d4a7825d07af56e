"""Figures a fault test reports, measured from the Sandbox's send log and the recipients table.

- expected: recipients the campaign froze (minus those a cancel legitimately left unsent, if told).
- sent_once / duplicated: recipients the Sandbox accepted exactly once / more than once.
- unknown: rows left `unknown` (may have gone, never resent).
- lost: rows still `queued`/`sending` when they should be settled, plus rows the database calls sent
  (sent/delivered/read) that the Sandbox never accepted, plus sends the Sandbox accepted for a row the
  database still has `queued` (sent without its row marked).
"""

from __future__ import annotations

from collections import Counter

from tests.integration.test_sending_support import recipients

DELIVERED = {"sent", "delivered", "read"}


def figures(sandbox, campaign_id: int, *, queued_is_ok: bool = False) -> dict:
    rows = recipients(campaign_id)
    per = Counter(sandbox.log()["per_recipient"])
    statuses = Counter(r.status for r in rows)
    pending = [r for r in rows if r.status == "sending" or (r.status == "queued" and not queued_is_ok)]
    phantom = [r for r in rows if r.status in DELIVERED and per.get(r.address, 0) == 0]
    unmarked = [r for r in rows if r.status == "queued" and per.get(r.address, 0) > 0]
    expected = len(rows) - (statuses["queued"] if queued_is_ok else 0)
    return {
        "expected": expected,
        "sent_once": sum(1 for n in per.values() if n == 1),
        "duplicated": sum(1 for n in per.values() if n > 1),
        "lost": len(pending) + len(phantom) + len(unmarked),
        "unknown": statuses["unknown"],
        "statuses": dict(statuses),
    }
