"""What the command line (app/cli.py) and the `hubcast run` supervisor (app/supervisor.py) both need.

Kept apart so the dependency runs one way only (the CLI starts the supervisor; the supervisor never
imports the CLI), and so `hubcast worker` can describe a SupervisorError without loading the supervisor.
"""

from __future__ import annotations


class SupervisorError(RuntimeError):
    """Startup or a child failed; the message is one line for `hubcast: error: ...`."""


def seed_summary(result: dict) -> str:
    """One line saying what seed_demo created (`hubcast seed-demo` and `hubcast run` print it)."""
    if not result.get("seeded"):
        return "Demo data already present; nothing to do."
    parts = [
        f"{result[k]} {k if result[k] != 1 else k[:-1]}"
        for k in ("channels", "templates", "contacts", "lists", "segments")
        if k in result
    ]
    return "Demo data created: " + ", ".join(parts) + "."
