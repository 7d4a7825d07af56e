"""The RQ worker loop behind `hubcast worker`.

Why `SimpleWorker`: RQ's default `Worker` starts a fresh "work horse" process for every job, which
measured ~10 jobs/s here; `SimpleWorker` runs jobs in its own process (~280 jobs/s). The price is
that a job crashing the interpreter takes the worker down with it; the `hubcast run` supervisor
notices and stops the whole app. Jobs must therefore record progress in the database, not trust
RQ's bookkeeping, which is the rule anyway (a killed worker's job lingers in RQ's registries).
Job timeouts still work: SimpleWorker enforces them with SIGALRM in the main thread.

`with_scheduler=True` starts RQ's scheduler beside the worker (a forked process, one per Redis via
a lock), which moves `enqueue_in` / `enqueue_at` jobs and delayed retries onto their queues.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis
from rq import SimpleWorker

from workers.queues import ALL_QUEUES


def run_worker(redis_url: str, queues: Sequence[str] = ALL_QUEUES, burst: bool = False,
               logging_level: str = "INFO") -> bool:
    """Work on `queues` until stopped (SIGINT/SIGTERM: finish the current job, then exit).

    In burst mode, enqueue scheduled jobs that are already due, run everything queued, and return.
    Returns whether any job was run.
    """
    # A connection of its own, not app.redis_conn's shared client: RQ raises the socket timeout
    # of the connection it is given (for its blocking BLPOP), which must not leak to other users.
    connection = redis.Redis.from_url(redis_url)
    worker = SimpleWorker(list(queues), connection=connection)
    return worker.work(burst=burst, with_scheduler=True, logging_level=logging_level)
