"""What the hardening suite survived, recorded as it runs and turned into a table by `make hardening`.

Each hardening test calls `record(...)` once per fault injected or bad input tried, with the figures it
measured (not what it hoped). tests/hardening/conftest.py also records every hardening test's outcome, so
a case whose assertions failed shows up as not survived even if it never reached its `record` call.
Records are JSON lines in `test-artifacts/hardening/records.jsonl` (HUBCAST_HARDENING_RECORDS overrides);
`bench/hardening_report.py` reads them (`load()`) and writes `bench/results/hardening.md`.

`figures(sandbox, campaign_id)`: a fault test's message figures, measured from the Sandbox's send log and
the recipients table:
- expected: recipients the campaign froze (minus those a cancel legitimately left unsent, if told).
- sent_once / duplicated: recipients the Sandbox accepted exactly once / more than once.
- unknown: rows left `unknown` (may have gone, never resent).
- lost: rows still `queued`/`sending` when they should be settled, plus rows the database calls sent
  (sent/delivered/read) that the Sandbox never accepted, plus sends the Sandbox accepted for a row the
  database still has `queued` (sent without its row marked).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KINDS = ("fault", "input", "handlers", "test")
DELIVERED = {"sent", "delivered", "read"}


def records_path() -> Path:
    return Path(os.environ.get("HUBCAST_HARDENING_RECORDS", ROOT / "test-artifacts" / "hardening" / "records.jsonl"))


def reset() -> None:
    path = records_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")


def record(kind: str, name: str, *, ok: bool, **figures) -> None:
    """kind: "fault" (figures: expected, sent_once, duplicated, lost, unknown, recovery_s, ...),
    "input" (figures: detail = the reason shown or what was parsed), or
    "handlers" (figures: checked, refused_correctly, allowed_correctly)."""
    if kind not in KINDS:
        raise ValueError(f"unknown hardening record kind {kind!r}")
    entry = {"kind": kind, "name": name, "ok": bool(ok), "at": time.time(), **figures}
    path = records_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry, default=str) + "\n")


def load() -> list[dict]:
    path = records_path()
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def figures(sandbox, campaign_id: int, *, queued_is_ok: bool = False) -> dict:
    from tests.support.factories import recipients

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
