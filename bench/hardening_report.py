"""The hardening suite's report (issue 6): what `pytest tests/hardening` survived, as a table.

Reads the records the suite wrote (`tests.support.hardening.load()`), prints a summary table and the
per-case lines, and writes them to bench/results/hardening.md with the machine's description.

A record belongs to the test that wrote it: the suite's conftest appends each test's outcome right after
the test ran, so a fault/input/handlers record is attributed to the next "test" record in the file. A
record whose test failed (or whose test never reported, e.g. the run was killed) counts as not survived,
whatever the record itself said.

    .venv/bin/python bench/hardening_report.py           # after `pytest tests/hardening` (`make hardening`)
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from audience import machine  # noqa: E402

from tests.support import hardening as report  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "hardening.md"
MESSAGE_FIGURES = ("expected", "sent_once", "duplicated", "lost", "unknown")
HANDLER_FIGURES = ("checked", "refused_correctly", "allowed_correctly")
_NOT_FIGURES = {"kind", "name", "ok", "at", "test", "test_ok", "detail"}


def attribute(records: list[dict]) -> tuple[list[dict], list[dict]]:
    """(case records with `test` / `test_ok` filled in, test outcome records)."""
    cases, tests, pending = [], [], []
    for rec in records:
        if rec.get("kind") != "test":
            pending.append(dict(rec))
            continue
        tests.append(rec)
        for case in pending:
            case["test"], case["test_ok"] = rec.get("name", ""), bool(rec.get("ok"))
        cases += pending
        pending = []
    for case in pending:  # written by a test that never reported its outcome
        case["test"], case["test_ok"] = "", False
    return cases + pending, tests


def survived(case: dict) -> bool:
    return bool(case.get("ok")) and bool(case.get("test_ok"))


def _num(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _figures(case: dict) -> str:
    shown = [f"{k}={v}" for k, v in case.items() if k not in _NOT_FIGURES]
    return ", ".join(shown)


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def summarise(records: list[dict]) -> dict:
    cases, tests = attribute(records)
    faults = [c for c in cases if c["kind"] == "fault"]
    inputs = [c for c in cases if c["kind"] == "input"]
    handlers = [c for c in cases if c["kind"] == "handlers"]
    return {
        "faults": faults,
        "inputs": inputs,
        "handlers": handlers,
        "tests": tests,
        "failed_tests": [t for t in tests if not t.get("ok") and not t.get("skipped")],
        "skipped_tests": [t for t in tests if t.get("skipped")],
        "orphans": [c for c in cases if not c.get("test")],
        "messages": {k: sum(_num(f.get(k)) for f in faults) for k in MESSAGE_FIGURES},
        # The handler × caller sweep says how many cases must be refused; the other attacks do not.
        "matrix": {
            k: sum(_num(h.get(k)) for h in handlers if "must_refuse" in h) for k in (*HANDLER_FIGURES, "must_refuse")
        },
        "matrix_ok": all(survived(h) for h in handlers if "must_refuse" in h),
        "attacks": {k: sum(_num(h.get(k)) for h in handlers if "must_refuse" not in h) for k in HANDLER_FIGURES},
        "attacks_ok": all(survived(h) for h in handlers if "must_refuse" not in h),
    }


def render(s: dict) -> str:
    faults, inputs, handlers, tests = s["faults"], s["inputs"], s["handlers"], s["tests"]
    m, h, a = s["messages"], s["matrix"], s["attacks"]
    lines = [
        f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {machine()}",
        "",
        "| what | tried | survived / correct |",
        "|---|---:|---:|",
        f"| faults injected / survived | {len(faults)} | {sum(survived(f) for f in faults)} |",
        f"| bad inputs tried / handled | {len(inputs)} | {sum(survived(i) for i in inputs)} |",
        f"| handlers × callers checked / refused correctly | {h['checked']} | {h['refused_correctly']} of "
        f"{h['must_refuse']} refused + {h['allowed_correctly']} allowed{'' if s['matrix_ok'] else ' (a check FAILED)'} |",
        f"| other attacks (webhooks, login, sessions, passwords, uploads, origin, headers, setters) | {a['checked']} | "
        f"{a['refused_correctly']} refused + {a['allowed_correctly']} allowed{'' if s['attacks_ok'] else ' (a check FAILED)'} |",
        f"| hardening tests run / passed | {len(tests)} | {sum(1 for t in tests if t.get('ok'))} |",
        "",
        "| messages (summed over fault cases) | expected | sent exactly once | duplicated | lost | unknown |",
        "|---|---:|---:|---:|---:|---:|",
        f"| all faults | {m['expected']} | {m['sent_once']} | {m['duplicated']} | {m['lost']} | {m['unknown']} |",
    ]
    if faults:
        lines += [
            "",
            "### Faults",
            "",
            "| fault | survived | expected | sent once | duplicated | lost | unknown | recovery (s) | other figures |",
            "|---|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for f in faults:
            other = {k: v for k, v in f.items() if k not in (*MESSAGE_FIGURES, "recovery_s")}
            lines.append(
                f"| {_cell(f['name'])} | {'yes' if survived(f) else '**NO**'} | "
                + " | ".join(_cell(f.get(k, "")) for k in (*MESSAGE_FIGURES, "recovery_s"))
                + f" | {_cell(_figures(other))} |"
            )
    if inputs:
        lines += [
            "",
            "### Bad inputs",
            "",
            "| input | handled | what the user is told / what was parsed |",
            "|---|---|---|",
        ]
        for i in inputs:
            lines.append(
                f"| {_cell(i['name'])} | {'yes' if survived(i) else '**NO**'} | {_cell(i.get('detail', ''))} |"
            )
    if handlers:
        lines += [
            "",
            "### Crafted events and attacks",
            "",
            "| case | correct | checked | refused correctly | allowed correctly | other figures |",
            "|---|---|---:|---:|---:|---|",
        ]
        for c in handlers:
            other = {k: v for k, v in c.items() if k not in HANDLER_FIGURES}
            lines.append(
                f"| {_cell(c['name'])} | {'yes' if survived(c) else '**NO**'} | "
                + " | ".join(_cell(c.get(k, "")) for k in HANDLER_FIGURES)
                + f" | {_cell(_figures(other))} |"
            )
    lines += ["", "### Failed tests", ""]
    lines += [f"- `{t['name']}` ({t.get('phase', 'call')})" for t in s["failed_tests"]] or ["None."]
    if s["skipped_tests"]:
        lines += ["", "### Skipped tests (their cases count as not survived)", ""]
        lines += [f"- `{t['name']}`" for t in s["skipped_tests"]]
    if s["orphans"]:
        lines += [
            "",
            f"{len(s['orphans'])} case(s) were recorded by a test that never reported an outcome "
            "(counted as not survived): " + ", ".join(_cell(c["name"]) for c in s["orphans"]),
        ]
    return "\n".join(lines) + "\n"


def main() -> int:
    records = report.load()
    where = report.records_path()
    if not records:
        text = f"No hardening records in {where}: run `make hardening` (or `pytest tests/hardening`) first.\n"
        print(text, end="")
        if not RESULTS.exists():  # never replace a real report by an empty one
            RESULTS.parent.mkdir(parents=True, exist_ok=True)
            RESULTS.write_text("# Hardening report (bench/hardening_report.py)\n\n" + text, encoding="utf-8")
        return 0
    body = render(summarise(records))
    print(body)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        "# Hardening report (bench/hardening_report.py)\n\nWritten by `make hardening` from the "
        "records of its last run: faults injected into real processes (workers, Redis, the "
        "database, the Sandbox over HTTP), bad input and crafted attacks. A case whose test failed "
        "counts as not survived.\n\n" + body,
        encoding="utf-8",
    )
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
