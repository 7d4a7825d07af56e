"""The RQ worker against a real Redis: queued jobs run, scheduled jobs run when due."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta

from rq.job import JobStatus

from app.settings import PROJECT_ROOT
from tests.support.wait import wait_until
from workers import jobs
from workers.queues import DEFAULT, get_queue
from workers.worker import run_worker


def test_burst_worker_runs_a_queued_job(redis_client, redis_url):
    job = get_queue(DEFAULT).enqueue(jobs.ping)
    # SimpleWorker.work() installs its own SIGINT/SIGTERM handlers: give pytest its own back.
    saved = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        assert run_worker(redis_url, burst=True) is True
    finally:
        signal.signal(signal.SIGINT, saved[0])
        signal.signal(signal.SIGTERM, saved[1])
    job.refresh()
    assert job.get_status() == JobStatus.FINISHED
    assert job.return_value() == "pong"


def test_worker_process_runs_a_scheduled_job_when_due(redis_client, redis_url, tmp_path):
    job = get_queue(DEFAULT).enqueue_in(timedelta(seconds=2), jobs.ping)
    assert job.get_status() == JobStatus.SCHEDULED
    env = {**os.environ, "REDIS_URL": redis_url, "HUBCAST_DATA_DIR": str(tmp_path / "data")}
    worker = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "worker"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_until(
            lambda: job.get_status(refresh=True) == JobStatus.FINISHED,
            timeout=30,
            interval=0.2,
            message="the scheduled job run",
        )
        assert job.return_value() == "pong"
        assert worker.poll() is None  # a normal worker keeps waiting for work
    finally:
        worker.send_signal(signal.SIGTERM)  # warm shutdown: also stops its scheduler process
        try:
            output, _ = worker.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            output, _ = worker.communicate()
    assert worker.returncode == 0, output
    assert not _group_alive(worker.pid), "the scheduler process outlived its worker"


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def test_worker_and_cli_never_import_reflex():
    code = (
        "import sys, app.cli, workers.worker, workers.jobs, workers.queues; "
        "sys.exit(1 if 'reflex' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, timeout=60).returncode == 0
