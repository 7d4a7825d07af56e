"""Jobs the worker runs. Kept importable without Reflex (workers never load the web app)."""

from __future__ import annotations


def ping() -> str:
    """A no-op round trip through Redis and a worker: health checks and tests enqueue it."""
    return "pong"
