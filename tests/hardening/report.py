"""What the hardening suite survived, recorded as it runs and turned into a table by `make hardening`.

Each hardening test calls `record(...)` once per fault injected or bad input tried, with the figures it
measured (not what it hoped). The conftest also records every hardening test's outcome, so a case whose
assertions failed shows up as not survived even if it never reached its `record` call.
Records are JSON lines in `test-artifacts/hardening/records.jsonl` (HUBCAST_HARDENING_RECORDS overrides);
`bench/hardening_report.py` reads them and writes `bench/results/hardening.md`.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KINDS = ("fault", "input", "handlers", "test")


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
