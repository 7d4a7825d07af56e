"""/healthz and the campaign pages' banner read what the `hubcast run` supervisor publishes (app/health.py):
each component's state, 200 while the web app can serve even if the worker or Redis is restarting, and
nothing claimed about processes no live supervisor watches."""

from __future__ import annotations

import subprocess
import sys

from starlette.testclient import TestClient

from app import health, redis_conn
from app.http_api import build_http_api
from app.redis_conn import free_port
from app.settings import reset_settings_cache


def _healthz():
    with TestClient(build_http_api()) as client:
        resp = client.get("/healthz")
    body = resp.json()
    assert isinstance(body.pop("applier_turns"), int)  # how many turns the status applier loop took so far
    return resp.status_code, body


def _status(**states: str) -> None:
    health.write_status(health.status_path(), {key: {"state": state} for key, state in states.items()})


def test_healthz_names_each_component_and_answers_200_while_the_worker_restarts(database_url, redis_client):
    _status(redis="ok", worker="restarting", sandbox="ok", web="ok")
    code, body = _healthz()
    assert code == 200
    assert body == {
        "status": "degraded",
        "web": "ok",
        "database": "ok",
        "redis": "ok",
        "worker": "restarting",
        "sandbox": "ok",
        "status_applier": "web",
    }
    assert health.worker_paused()  # the campaign pages show "Sending is paused while the worker restarts"

    _status(redis="ok", worker="ok", sandbox="ok", web="ok")
    assert _healthz() == (
        200,
        {
            "status": "ok",
            "web": "ok",
            "database": "ok",
            "redis": "ok",
            "worker": "ok",
            "sandbox": "ok",
            "status_applier": "web",
        },
    )
    assert not health.worker_paused()


def test_redis_being_restarted_is_reported_as_such_not_as_a_503(database_url, monkeypatch):
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    reset_settings_cache()
    redis_conn.reset_redis_cache()
    try:
        _status(redis="restarting", worker="ok", web="ok")
        code, body = _healthz()
        assert code == 200 and body["redis"] == "restarting" and body["status"] == "degraded"
        _status(worker="ok", web="ok")  # not supervised (REDIS_URL): the error itself is shown
        code, body = _healthz()
        assert code == 200 and body["redis"].startswith("error: ")
    finally:
        redis_conn.reset_redis_cache()


def test_a_status_left_by_a_supervisor_that_is_gone_is_ignored(database_url, redis_client):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    health.write_status(health.status_path(), {"worker": {"state": "restarting"}}, supervisor_pid=dead.pid)
    assert health.read_status() is None and not health.worker_paused()
    assert _healthz() == (200, {"status": "ok", "web": "ok", "database": "ok", "redis": "ok", "status_applier": "web"})


def test_without_a_supervisor_nothing_is_claimed(database_url, redis_client):
    assert not health.status_path().exists()
    assert health.component_states() == {} and not health.worker_paused()
