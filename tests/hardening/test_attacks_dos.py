"""Issue 13 item 2: unauthenticated denial of service.

(a) Anonymous tabs flooding the login form must not stall a signed-in user: Argon2id runs off the event
    loop in a bounded pool, and logins are rate limited per address and overall (in Redis).
(b) Anonymous calls of guarded handlers are refused without one audit row (and one commit) each: they
    are counted per minute.
(c) A chunked webhook body is refused (413) as soon as it passes the limit, without being held in memory.

(a) and (b) travel the app's real Reflex event path in-process (tests/support/reflex_client.py); (c) posts
to a real server of the app's HTTP routes in its own process and reads that process's memory. Bounds are
generous and every wait waits for a condition: a busy 2-core machine must pass them.
"""

from __future__ import annotations

import asyncio
import threading
import time

from sqlmodel import Session, func, select

from app.db import get_engine
from app.domain import permissions as perm
from app.models import AuditLog
from state.campaigns import CampaignsState
from state.login import LoginState
from tests.support.hardening import record
from tests.support.reflex_client import cookie_for, event_name

FLOODERS = 20


async def _answered(client, timeout: float = 60.0) -> float:
    """Seconds until the server emitted something to this tab (its event was answered)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while client._recorder.get(client.sid) is None:
        if loop.time() - start > timeout:
            raise TimeoutError("no answer")
        await asyncio.sleep(0.002)
    client._recorder.pop(client.sid, None)
    return loop.time() - start


async def _fire(client, name: str, payload: dict, path: str) -> None:
    await client.ns.on_event(
        client.sid,
        {
            "name": name,
            "payload": payload,
            "token": "x",
            "router_data": {"pathname": path, "query": {}, "asPath": path},
        },
    )


def test_login_flood_does_not_stall_a_signed_in_user(world, redis_client, reflex_backend):
    cookie, _user = cookie_for(world, perm.BASIC, redis_client)
    submit, search = event_name(LoginState, "submit"), event_name(CampaignsState, "set_search")

    async def scenario(new_client):
        user = new_client(ip="192.0.2.50")
        await user.connect(cookie, path="/campaigns")
        # Before the flood: how fast this machine answers the page event right now.
        quiet = []
        for i in range(3):
            await _fire(user, search, {"value": f"quiet {i}"}, "/campaigns")
            quiet.append(await _answered(user))
        flooders = [new_client(ip=f"203.0.113.{i + 1}") for i in range(FLOODERS)]
        for f in flooders:
            await f.connect("")
        stop = asyncio.Event()
        answered = [0]

        async def flood(f, i):
            n = 0
            while not stop.is_set():
                await _fire(
                    f,
                    submit,
                    {"form": {"email": f"nobody{i}-{n}@example.com", "password": f"random password {n}"}},
                    "/login",
                )
                try:
                    await _answered(f)
                except TimeoutError:
                    continue
                answered[0] += 1
                n += 1

        tasks = [asyncio.create_task(flood(f, i)) for i, f in enumerate(flooders)]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while answered[0] < FLOODERS and loop.time() < deadline:  # the flood is in full swing
            await asyncio.sleep(0.01)
        during = []
        for i in range(5):
            await _fire(user, search, {"value": f"busy {i}"}, "/campaigns")
            during.append(await _answered(user))
        stop.set()
        await asyncio.gather(*tasks)
        search_after = (await user.substate(CampaignsState)).search
        for f in [user, *flooders]:
            await f.close()
        return quiet, during, answered[0], search_after

    started = time.monotonic()
    quiet, during, flood_answers, search_after = reflex_backend(scenario)
    with Session(get_engine()) as s:
        checked = s.exec(
            select(func.count())
            .select_from(AuditLog)
            .where(AuditLog.action == "auth.login", AuditLog.outcome == "refused")
        ).one()
    worst = max(during)
    ok = worst < 1.0 and search_after == "busy 4" and flood_answers >= FLOODERS
    record(
        "handlers",
        f"{FLOODERS} anonymous tabs flooding the login form while a signed-in user clicks",
        ok=ok,
        checked=flood_answers + len(during),
        refused_correctly=flood_answers,
        allowed_correctly=len(during),
        user_event_worst_s=round(worst, 3),
        user_event_quiet_s=round(max(quiet), 3),
        login_refusals_logged=checked,
        duration_s=round(time.monotonic() - started, 1),
    )
    assert flood_answers >= FLOODERS
    assert search_after == "busy 4"
    assert worst < 1.0, f"the signed-in user's event took {worst:.2f} s during the flood (quiet: {quiet})"


ANONYMOUS_EVENTS = 10_000


def test_ten_thousand_anonymous_refused_events_add_few_audit_rows(world, redis_client, reflex_backend):
    from tests.support.reflex_client import settle

    search = event_name(CampaignsState, "set_search")
    with Session(get_engine()) as s:
        rows_before = s.exec(select(func.count()).select_from(AuditLog)).one()

    async def scenario(new_client):
        clients = [new_client(ip=f"203.0.113.{i + 1}") for i in range(10)]
        for c in clients:
            await c.connect("")
        per_client = ANONYMOUS_EVENTS // len(clients)
        for start in range(0, per_client, 250):
            for c in clients:
                for n in range(start, min(per_client, start + 250)):
                    await _fire(c, search, {"value": f"x{n}"}, "/campaigns")
            await settle(timeout=120)
        redirects = sum(len(c.take().redirects()) for c in clients)
        searches = [(await c.substate(CampaignsState)).search for c in clients]
        for c in clients:
            await c.close()
        return redirects, searches

    started = time.monotonic()
    redirects, searches = reflex_backend(scenario)
    elapsed = time.monotonic() - started
    with Session(get_engine()) as s:
        added = s.exec(select(func.count()).select_from(AuditLog)).one() - rows_before
        summaries = s.exec(select(AuditLog).where(AuditLog.action == "permission.refused")).all()
    counted = sum(int((a.detail or {}).get("count", 1)) for a in summaries)
    ok = added < 100 and all(v == "" for v in searches)
    record(
        "handlers",
        f"{ANONYMOUS_EVENTS:,} anonymous calls of a guarded handler (audit rows added)",
        ok=ok,
        checked=ANONYMOUS_EVENTS,
        refused_correctly=ANONYMOUS_EVENTS if all(v == "" for v in searches) else 0,
        allowed_correctly=0,
        audit_rows_added=added,
        refusals_counted_in_rows=counted,
        redirects_to_login=redirects,
        duration_s=round(elapsed, 1),
    )
    assert all(v == "" for v in searches)  # refused: nothing ran
    assert added < 100, f"{added} audit rows for {ANONYMOUS_EVENTS} anonymous refusals"
    assert counted >= ANONYMOUS_EVENTS * 0.9  # still counted, within the rows' update interval


CHUNKED_BYTES = 50 * 1024 * 1024


def _memory_kb(pid: int) -> dict[str, int]:
    from pathlib import Path

    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


def _post_chunked(host: str, port: int, total: int, chunk: int = 64 * 1024) -> tuple[int | None, int]:
    """POST `total` bytes of JSON-looking junk with Transfer-Encoding: chunked, checking before each piece
    whether the server has answered (it may hang up right after its answer). Returns (status, bytes sent)."""
    import select
    import socket

    answer = b""
    sent, piece = 0, b'{"entry":[' + b" " * (chunk - 10)
    with socket.create_connection((host, port), timeout=60) as sock:
        sock.sendall(
            (
                f"POST /webhooks/whatsapp HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                f"X-Hub-Signature-256: sha256={'0' * 64}\r\nTransfer-Encoding: chunked\r\n\r\n"
            ).encode()
        )
        try:
            while sent < total:
                readable, _, _ = select.select([sock], [], [], 0)
                if readable:
                    break
                sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                sent += len(piece)
            else:
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server hung up: its answer, if it sent one, is waiting in our receive buffer
        try:
            answer = sock.recv(4096)
        except OSError:
            answer = b""
    parts = answer.split(b"\r\n", 1)[0].split()
    return (int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None), sent


def test_a_50_mb_chunked_webhook_is_refused_without_being_held_in_memory(database_url, redis_url, tmp_path):
    import os
    from urllib.parse import urlparse

    from app.http_api import MAX_WEBHOOK_BYTES
    from tests.support.processes import cmdline, descendants, http_api_process
    from tests.support.wait import wait_until

    with http_api_process(tmp_path / "api", database_url, redis_url) as url:
        port = urlparse(url).port
        [pid] = [p for p in descendants(os.getpid()) if "build_http_api" in cmdline(p) and str(port) in cmdline(p)]
        before = _memory_kb(pid)
        peak, done = [before["VmRSS"]], threading.Event()

        def sample():  # the peak during the request (VmHWM alone may still hold the start-up peak)
            while not done.is_set():
                peak[0] = max(peak[0], _memory_kb(pid)["VmRSS"])
                time.sleep(0.005)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        status, sent = _post_chunked("127.0.0.1", port, CHUNKED_BYTES)
        wait_until(lambda: _memory_kb(pid)["VmRSS"] > 0, timeout=5, message="memory readable")
        done.set()
        sampler.join()
        after = _memory_kb(pid)
    growth_mb = max(peak[0] - before["VmRSS"], after["VmHWM"] - before["VmHWM"]) / 1024
    ok = status == 413 and growth_mb < 20
    record(
        "handlers",
        "50 MB chunked webhook body (no Content-Length)",
        ok=ok,
        checked=1,
        refused_correctly=int(status == 413),
        allowed_correctly=0,
        status=status,
        sent_mb_before_answer=round(sent / 1024 / 1024, 1),
        peak_rss_growth_mb=round(growth_mb, 1),
        limit_mb=round(MAX_WEBHOOK_BYTES / 1024 / 1024, 1),
    )
    assert status == 413
    assert growth_mb < 20, f"the server's peak memory grew {growth_mb:.1f} MB"
