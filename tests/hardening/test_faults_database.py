"""The database unreachable for 20 s mid-campaign, with real `hubcast worker` processes and the Sandbox.

- SQLite: another process holds an EXCLUSIVE lock on the database file for 20 s (what a backup tool, a
  long migration or a stuck writer does): every write (claims, outcomes) waits.
- PostgreSQL (when 127.0.0.1:5432 answers; database `hubcast_hardening`): the workers reach it through a
  TCP proxy this test controls; the proxy drops every connection and refuses new ones for 20 s.
Checked: every message the Sandbox accepted belongs to a row marked `sending` (claimed, committed) before
the request (its claimed_at precedes the Sandbox's acceptance), nobody gets two messages, and sending
resumes after the outage until the campaign completes."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from datetime import datetime

import pytest
from sqlmodel import Session

from app import db as app_db
from app.services.sending.keys import recipient_id_from_callback
from app.services.sending.lifecycle import start_campaign
from app.settings import reset_settings_cache
from tests.support.factories import campaign_row, make_sandbox_campaign, recipients
from tests.support.hardening import figures, record
from tests.support.processes import TcpProxy, stop_process, worker_process
from tests.support.sandbox import run_sandbox
from tests.support.wait import wait_until

N, CAP, OUTAGE_S = 1200, 150, 20.0
PG_HOST, PG_PORT, PG_DB = "127.0.0.1", 5432, "hubcast_hardening"

LOCK_HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))  # the lock is held this long on purpose
conn.execute("COMMIT")
"""


def _marked_before_sent(sb, campaign_id: int) -> tuple[int, list]:
    """(entries checked, offending entries): each accepted send must match a claimed row of this campaign."""
    rows = {r.id: r for r in recipients(campaign_id)}
    bad = []
    entries = sb.entries()
    for e in entries:
        row = rows.get(recipient_id_from_callback(e["biz_opaque_callback_data"]))
        accepted = datetime.fromisoformat(e["at"])
        claimed = row.claimed_at if row else None
        if claimed is not None and claimed.tzinfo is None:
            claimed = claimed.replace(tzinfo=accepted.tzinfo)
        if row is None or row.status == "queued" or claimed is None or claimed > accepted:
            bad.append(e)
    return len(entries), bad


def _campaign_through_outage(
    session,
    user,
    database_url_for_workers: str,
    redis_url: str,
    tmp_path,
    outage,
    fault_name: str,
    env: dict | None = None,
) -> None:
    env = {"HUBCAST_SEND_TICK_INTERVAL_S": "1", **(env or {})}
    with run_sandbox(tmp_path / "sandbox", mps=CAP) as sb:
        campaign = make_sandbox_campaign(session, sb, N, mps=CAP)
        workers = [worker_process(tmp_path, database_url_for_workers, redis_url, f"w{i}", env) for i in range(2)]
        try:
            start_campaign(session=session, actor=user, campaign_id=campaign.id)
            wait_until(lambda: sb.log()["total"] >= N // 5, timeout=60, message="a fifth sent")
            at_fault = sb.log()["total"]
            outage()  # returns when the database is reachable again
            at_restore, restored = sb.log()["total"], time.monotonic()
            done = wait_until(
                lambda: campaign_row(campaign.id).status in ("sent", "failed", "paused") and campaign_row(campaign.id),
                timeout=150,
                interval=0.5,
                message="campaign finished",
            )
            recovery = time.monotonic() - restored
            alive = [w.poll() is None for w in workers]
        finally:
            for w in workers:
                stop_process(w)
        fig = figures(sb, campaign.id)
        checked, unmarked = _marked_before_sent(sb, campaign.id)

    ok = (
        done.status == "sent"
        and not unmarked
        and fig["duplicated"] == 0
        and fig["lost"] == 0
        and all(alive)
        and checked == fig["sent_once"]
        and fig["unknown"] == 0
    )
    record(
        "fault",
        fault_name,
        ok=ok,
        outage_s=OUTAGE_S,
        recovery_s=round(recovery, 1),
        sent_at_fault=at_fault,
        sent_during_outage=at_restore - at_fault,
        sent_without_row_marked=len(unmarked),
        **{k: v for k, v in fig.items() if k != "statuses"},
    )
    assert not unmarked, f"{len(unmarked)} messages left without their row marked first: {unmarked[:3]}"
    assert all(alive), "the workers ride out the outage"
    assert done.status == "sent", done.pause_reason
    assert fig["duplicated"] == 0 and checked == fig["sent_once"], "nobody gets two messages"
    assert fig["lost"] == 0, fig["statuses"]
    # The outcomes of messages sent during the outage wait for the database: none ends `unknown`.
    assert fig["statuses"] == {"sent": N} and fig["unknown"] == 0, fig["statuses"]


@pytest.mark.timeout(240)
def test_sqlite_locked_by_another_process_for_20s(session, redis_client, redis_url, database_url, make_user, tmp_path):
    if not database_url.startswith("sqlite"):
        pytest.skip("the SQLite outage needs the SQLite database; test_postgres_unreachable covers PostgreSQL")
    user = make_user("basic")
    path = database_url.removeprefix("sqlite:///")

    def outage():
        holder = subprocess.Popen(
            [sys.executable, "-c", LOCK_HOLDER, path, str(OUTAGE_S)], stdout=subprocess.PIPE, start_new_session=True
        )
        try:
            assert holder.stdout.readline().strip() == b"locked"
            assert holder.wait(timeout=OUTAGE_S + 30) == 0
        finally:
            stop_process(holder)

    _campaign_through_outage(
        session,
        user,
        database_url,
        redis_url,
        tmp_path,
        outage,
        "SQLite locked by another process for 20 s mid-campaign",
    )


def _postgres_answers() -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture()
def pg_database(monkeypatch):
    """A dedicated, migrated, emptied PostgreSQL database; the test process uses it directly."""
    if not _postgres_answers():
        pytest.skip(f"PostgreSQL does not answer on {PG_HOST}:{PG_PORT}; the SQLite variant ran instead")
    import psycopg

    from app.migrate import upgrade_to_head
    from tests.support.stores import truncate_all

    with psycopg.connect(f"host={PG_HOST} port={PG_PORT} user=postgres dbname=postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (PG_DB,)).fetchone():
            conn.execute(f'CREATE DATABASE "{PG_DB}"')
    url = f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/{PG_DB}"
    upgrade_to_head(url)
    truncate_all(url)
    monkeypatch.setenv("DATABASE_URL", url)
    reset_settings_cache()
    app_db._engine_for.cache_clear()
    yield url
    app_db.get_engine().dispose()
    app_db._engine_for.cache_clear()
    reset_settings_cache()


@pytest.mark.timeout(240)
def test_postgres_unreachable_for_20s(pg_database, private_redis, tmp_path):
    # A Redis of its own: with REDIS_URL shared (CI), any other worker on it would take this campaign's jobs.
    redis_url = private_redis.url
    from app.services.accounts.users import create_user

    proxy = TcpProxy(PG_HOST, PG_PORT)
    workers_url = pg_database.replace(f"@{PG_HOST}:{PG_PORT}/", f"@127.0.0.1:{proxy.port}/")

    def outage():
        proxy.cut()
        time.sleep(OUTAGE_S)  # the outage itself
        proxy.restore()

    try:
        with Session(app_db.get_engine(), expire_on_commit=False) as session:
            user, _ = create_user(
                session=session, actor=None, email="sender@example.com", role="basic", password="correct horse battery"
            )
            _campaign_through_outage(
                session,
                user,
                workers_url,
                redis_url,
                tmp_path,
                outage,
                "PostgreSQL unreachable (connections cut) for 20 s mid-campaign",
                env={"HUBCAST_SEND_STUCK_GRACE_S": "20", "HUBCAST_SEND_ALIVE_TTL_S": "10"},
            )
    finally:
        proxy.close()
    assert proxy.refused > 0, "the workers tried to reach PostgreSQL during the cut"
