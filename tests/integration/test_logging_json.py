"""`HUBCAST_LOG_FORMAT=json` (app/logging_setup.py): a worker's log lines are JSON objects, one per line,
RQ's own lines included."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

from app.logging_setup import JsonFormatter
from app.settings import PROJECT_ROOT


def test_json_formatter_keeps_extra_fields_and_tracebacks():
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.getLogger("hubcast.test").makeRecord(
            "hubcast.test",
            logging.ERROR,
            __file__,
            1,
            "sent %d to %s",
            (3, "Ana"),
            sys.exc_info(),
            extra={"campaign_id": 7},
        )
    entry = json.loads(JsonFormatter("worker").format(record))
    assert entry["message"] == "sent 3 to Ana" and entry["level"] == "error" and entry["process"] == "worker"
    assert entry["campaign_id"] == 7 and "ValueError: boom" in entry["exc_info"]
    assert entry["ts"].endswith("Z")


def test_worker_log_lines_parse_as_json(redis_client, redis_url, database_url, tmp_path):
    from rq import Queue

    Queue("default", connection=redis_client).enqueue("workers.jobs.ping")
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "HUBCAST_DATA_DIR": str(tmp_path),
        "HUBCAST_LOG_FORMAT": "json",
        "PYTHONUNBUFFERED": "1",
    }
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "worker", "--burst"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert lines, "the worker logged nothing"
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all(isinstance(e, dict) and {"ts", "level", "logger", "message"} <= e.keys() for e in entries)
    assert any(e["logger"].startswith("rq.") and "ping" in e["message"] for e in entries), entries
