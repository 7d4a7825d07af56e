"""The RQ worker loop behind `hubcast worker`.

Why `SimpleWorker`: RQ's default `Worker` starts a fresh "work horse" process for every job, which
measured ~10 jobs/s here; `SimpleWorker` runs jobs in its own process (~280 jobs/s). The price is
that a job crashing the interpreter takes the worker down with it; the `hubcast run` supervisor
notices and stops the whole app. Jobs must therefore record progress in the database, not trust
RQ's bookkeeping, which is the rule anyway (a killed worker's job lingers in RQ's registries).
Job timeouts still work: SimpleWorker enforces them with SIGALRM in the main thread.

`with_scheduler=True` starts RQ's scheduler beside the worker (a forked process, one per Redis via
a lock), which moves `enqueue_in` / `enqueue_at` jobs and delayed retries onto their queues.

Periodic work (starting due Scheduled campaigns, the crash sweeper) runs in a small thread of every
long-running worker, every `tick_interval_s`, under a Redis lock so it runs about once per interval
whatever the number of workers. A thread rather than a queued job: it must not wait behind long send
jobs, and it keeps running when Redis was flushed (no scheduled job to lose). Running it twice at once
would still be safe: campaign starts are guarded in the database, the sweeper's updates are conditional.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

import redis
from rq import SimpleWorker

from app.services.sending.config import sending_config
from workers.jobs import periodic_tick, preload
from workers.queues import ALL_QUEUES

log = logging.getLogger(__name__)
TICK_LOCK = "hubcast:periodic:lock"


def periodic_loop(redis_url: str, stop: threading.Event, interval: float | None = None) -> None:
    interval = interval or sending_config().tick_interval_s
    connection = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
    while not stop.wait(interval):
        try:
            if connection.set(TICK_LOCK, "1", nx=True, px=max(100, int(interval * 900))):
                periodic_tick()
        except Exception:  # a database or Redis hiccup must not end the loop
            log.exception("periodic tick failed")


def start_periodic_thread(redis_url: str) -> threading.Event:
    stop = threading.Event()
    threading.Thread(target=periodic_loop, args=(redis_url, stop), name="hubcast-periodic", daemon=True).start()
    return stop


def run_worker(
    redis_url: str, queues: Sequence[str] = ALL_QUEUES, burst: bool = False, logging_level: str = "INFO"
) -> bool:
    """Work on `queues` until stopped (SIGINT/SIGTERM: finish the current job, then exit).

    In burst mode, enqueue scheduled jobs that are already due, run everything queued, and return.
    Returns whether any job was run.
    """
    # A connection of its own, not app.redis_conn's shared client: RQ raises the socket timeout
    # of the connection it is given (for its blocking BLPOP), which must not leak to other users.
    connection = redis.Redis.from_url(redis_url)
    preload()
    stop = None if burst else start_periodic_thread(redis_url)
    try:
        while True:
            worker = SimpleWorker(list(queues), connection=connection)
            try:
                worked = worker.work(burst=burst, with_scheduler=True, logging_level=logging_level)
            except redis.exceptions.ConnectionError:
                if burst or _stop_requested(worker):
                    raise
                worked = False
            # RQ quits on any Redis error outside its dequeue loop (e.g. finishing a job while Redis
            # restarts). A long-running worker rides that out: the jobs' truth is in the database, and
            # the sweeper re-enqueues what Redis lost, so start a fresh worker once Redis answers.
            if burst or _stop_requested(worker) or _redis_answers(connection):
                return worked
            log.warning("worker: Redis connection lost; starting again when it answers")
            while not _redis_answers(connection):
                time.sleep(1.0)
    finally:
        if stop is not None:
            stop.set()


def _stop_requested(worker: SimpleWorker) -> bool:
    return bool(getattr(worker, "_stop_requested", False) or getattr(worker, "_shutdown_requested_date", None))


def _redis_answers(connection: redis.Redis) -> bool:
    try:
        return bool(connection.ping())
    except redis.exceptions.RedisError:
        return False
