"""Queue names and the one way the app gets an RQ queue.

Every queue the app enqueues on must be listed in ALL_QUEUES, because `hubcast worker` listens on
ALL_QUEUES by default: a job put on a queue no worker watches would wait forever. The names live in
the services layer because services enqueue (a campaign's send jobs); `workers.queues` re-exports them
for the worker side (workers may import services, never the reverse).
"""

from __future__ import annotations

from rq import Queue

from app.redis_conn import get_redis

DEFAULT = "default"
SENDING = "sending"  # campaign send jobs (long: up to their time budget); short jobs go first
# Order matters: a worker takes jobs from the first non-empty queue in this order.
ALL_QUEUES: tuple[str, ...] = (DEFAULT, SENDING)


def get_queue(name: str = DEFAULT) -> Queue:
    """An RQ queue on the app's Redis (REDIS_URL). Unknown names are refused (see module docstring)."""
    if name not in ALL_QUEUES:
        raise ValueError(f"Unknown queue {name!r}; known queues: {', '.join(ALL_QUEUES)}")
    return Queue(name, connection=get_redis())
