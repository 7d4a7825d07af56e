"""The RQ side of sending: putting a campaign's send jobs on the queue, and the job body itself.

RQ only says "process the next chunk" (DESIGN rule 2): a job takes a campaign id, runs one
`BatchRunner` (its time budget's worth), closes the campaign when nothing is left, and otherwise
re-enqueues itself (now, or when the earliest retry is due). `lanes` jobs per campaign let several
workers share it; every one of them is safe to run at the same time as the others.

While the campaign's audience is still being frozen (`freeze.py`: "Send" froze only the first chunk),
the job that takes the freeze's lease freezes the rest in a thread beside its sending, within its time
budget; a job that runs out of rows meanwhile sends again as soon as more are frozen, and every job
re-enqueues itself while the freeze goes on (however few rows it found), so the lanes survive the start
and a job takes over the freeze of a freezer that died once its lease expires.
"""

from __future__ import annotations

import asyncio
import cProfile
import dataclasses
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlmodel import Session

from app.db import get_engine
from app.domain.campaign_status import SENDING
from app.redis_conn import redis_url
from app.services.sending.batch_runner import JobStats, load_context, run_batch
from app.services.sending.claims import campaign_status, is_sqlite, next_due
from app.services.sending.config import SendingConfig, sending_config
from app.services.sending.freeze import FreezeRun, continue_freeze, is_freezing, take_freeze_lease
from app.services.sending.keys import alive_key, ensure_posted_epoch_sync
from app.services.sending.progress import finish_if_done
from app.services.sending.queues import SENDING as SENDING_QUEUE
from app.services.sending.queues import get_queue
from app.settings import get_settings
from app.timeutil import utcnow

log = logging.getLogger(__name__)

# The job's import path, as RQ stores it (a string: services never import `workers`).
SEND_JOB = "workers.jobs.send_campaign_batch"
# A lane that found nothing to send while the freeze goes on elsewhere comes back after this long.
_FREEZE_POLL_S = 0.5


def enqueue_lanes(
    campaign_id: int, count: int = 1, *, delay_s: float = 0.0, redis_client=None, config: SendingConfig | None = None
) -> None:
    """Put `count` send jobs for the campaign on the sending queue (now or after `delay_s`)."""
    config = config or sending_config()
    queue = get_queue(SENDING_QUEUE)
    if redis_client is None:
        redis_client = queue.connection
    timeout = int(config.job_budget_s + config.request_timeout_s * 2 + 120)
    ttl = int(max(config.alive_ttl_s, delay_s + config.alive_ttl_s))
    redis_client.set(alive_key(campaign_id), "1", ex=ttl)
    ensure_posted_epoch_sync(redis_client, campaign_id)
    for _ in range(max(1, count)):
        kwargs = dict(
            job_timeout=timeout, result_ttl=60, failure_ttl=24 * 3600, description=f"send campaign {campaign_id}"
        )
        if delay_s > 0.05:
            queue.enqueue_in(timedelta(seconds=delay_s), SEND_JOB, campaign_id, **kwargs)
        else:
            queue.enqueue(SEND_JOB, campaign_id, **kwargs)


class _Freezer(threading.Thread):
    """Runs `freeze.continue_freeze` beside the job's sending; `progress` is set after each chunk."""

    def __init__(self, engine, campaign_id: int, config: SendingConfig, deadline: float) -> None:
        super().__init__(name=f"freeze-{campaign_id}", daemon=True)
        self.engine, self.campaign_id, self.config, self.deadline = engine, campaign_id, config, deadline
        self.stop = threading.Event()
        self.progress = threading.Event()
        self.result = FreezeRun()

    def run(self) -> None:
        try:
            self.result = continue_freeze(
                self.engine,
                self.campaign_id,
                chunk=self.config.freeze_chunk,
                deadline=self.deadline,
                stop=self.stop,
                on_chunk=lambda _n: self.progress.set(),
            )
        except Exception:  # its lease expires and another job resumes after the last committed chunk
            log.exception("campaign %s: the audience freeze failed; another job will resume it", self.campaign_id)
        finally:
            self.progress.set()


def _start_freezer(engine, campaign_id: int, config: SendingConfig, deadline: float) -> _Freezer | None:
    try:
        # a read first: most jobs find no freeze to run, and need not take the write lock to learn it
        if not is_freezing(engine, campaign_id) or not take_freeze_lease(engine, campaign_id, config.freeze_lease_s):
            return None
    except Exception:
        log.warning("campaign %s: could not check the audience freeze", campaign_id, exc_info=True)
        return None
    freezer = _Freezer(engine, campaign_id, config, deadline)
    freezer.start()
    return freezer


def _add(total: JobStats, more: JobStats) -> JobStats:
    for f in ("claimed", "sent", "failed", "retried", "unknown", "requeued"):
        setattr(total, f, getattr(total, f) + getattr(more, f))
    total.stopped_reason = total.stopped_reason or more.stopped_reason
    for key, value in more.extra.items():
        total.extra[key] = total.extra.get(key, 0) + value
    return total


def send_campaign_batch(campaign_id: int, *, config: SendingConfig | None = None) -> dict:
    """The RQ job body (workers.jobs.send_campaign_batch). Returns a small summary for RQ's result."""
    config = config or sending_config()
    engine = get_engine()
    ctx = load_context(engine, campaign_id, config)
    if ctx is None:
        return {"campaign_id": campaign_id, "idle": True}
    started = time.monotonic()
    deadline = started + config.job_budget_s
    freezer = _start_freezer(engine, campaign_id, config, deadline)
    profile_dir = get_settings().send_profile_dir
    try:
        stats = _run(engine, ctx, profile_dir)
        # Out of rows while this job's freezer still freezes: send again as soon as it commits more.
        while freezer is not None and freezer.is_alive() and not stats.stopped_reason:
            left = deadline - time.monotonic()
            if left <= 1.0 or campaign_status(engine, campaign_id) != SENDING:
                break
            freezer.progress.clear()
            if freezer.is_alive():
                freezer.progress.wait(min(left, 1.0))
            ctx = dataclasses.replace(ctx, config=dataclasses.replace(config, job_budget_s=left))
            stats = _add(stats, _run(engine, ctx, profile_dir))
    finally:
        if freezer is not None:
            freezer.stop.set()
            freezer.join()
    with Session(engine) as session:
        session.connection()  # SQLite: make the write lock the transaction's first step
        if is_sqlite(engine):
            session.connection().exec_driver_sql("BEGIN IMMEDIATE")
        finished = finish_if_done(session, campaign_id)
        session.commit()
    if not finished and campaign_status(engine, campaign_id) == SENDING:
        due = next_due(engine, campaign_id)
        if due is True:
            enqueue_lanes(campaign_id, 1, config=config)
        elif is_freezing(engine, campaign_id):  # more rows are coming: keep this lane (and a freezer) alive
            enqueue_lanes(campaign_id, 1, delay_s=_FREEZE_POLL_S, config=config)
        elif isinstance(due, datetime):
            enqueue_lanes(campaign_id, 1, delay_s=max(0.0, (due - utcnow()).total_seconds()) + 0.05, config=config)
    summary = {
        "campaign_id": campaign_id,
        "claimed": stats.claimed,
        "sent": stats.sent,
        "failed": stats.failed,
        "retried": stats.retried,
        "unknown": stats.unknown,
        "requeued": stats.requeued,
        "paused": stats.stopped_reason,
        "finished": finished,
        "seconds": round(time.monotonic() - started, 3),
    }
    if freezer is not None:
        summary["frozen"] = freezer.result.rows
    return summary


def _run(engine, ctx, profile_dir: str | None) -> JobStats:
    if profile_dir:  # benchmarks only: where a job's time goes (cProfile of the event loop thread + spans)
        return _profiled(profile_dir, lambda: asyncio.run(run_batch(engine, ctx, redis_url())))
    return asyncio.run(run_batch(engine, ctx, redis_url()))


def _profiled(directory: str, run: Callable[[], JobStats]) -> JobStats:
    profiler = cProfile.Profile()
    started, cpu = time.perf_counter(), time.process_time()
    profiler.enable()
    try:
        stats = run()
    finally:
        profiler.disable()
    name = f"{os.getpid()}-{time.time_ns()}"
    profiler.dump_stats(os.path.join(directory, f"job-{name}.prof"))
    with open(os.path.join(directory, f"spans-{os.getpid()}.jsonl"), "a") as fh:
        fh.write(
            json.dumps(
                {
                    "wall": time.perf_counter() - started,
                    "cpu": time.process_time() - cpu,
                    "claimed": stats.claimed,
                    "sent": stats.sent,
                    **stats.extra,
                }
            )
            + "\n"
        )
    return stats
