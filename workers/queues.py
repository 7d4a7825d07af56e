"""The RQ queues, as the worker side sees them: defined in `app.services.sending.queues` (services
enqueue send jobs, and services never import `workers`), re-exported here for the worker and the CLI."""

from __future__ import annotations

from app.services.sending.queues import ALL_QUEUES, DEFAULT, SENDING, get_queue

__all__ = ["ALL_QUEUES", "DEFAULT", "SENDING", "get_queue"]
