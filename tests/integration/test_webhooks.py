"""POST/GET /webhooks/whatsapp through real HTTP against the real Starlette app, a real database, and
(last test) the real Sandbox process posting signed webhooks to a real server of that app.

Most tests apply the stored events with `apply_pending_statuses` themselves, so each step is
deterministic; the background applier is exercised by the Sandbox test at the end."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, select

from app.db import get_engine
from app.http_api import build_http_api
from app.models import (
    AuditLog,
    CampaignRecipient,
    Channel,
    Contact,
    ContactIdentity,
    InboundMessage,
    WebhookStatusEvent,
)
from app.services.inbound.webhook_ingest import apply_pending_statuses
from app.whatsapp.signature import HEADER, sign
from tests.support.sandbox import free_port, http_ok
from tests.support.wait import wait_until
from tests.support.webhook_payloads import (
    PNID,
    SECRET,
    VERIFY,
    add_recipients,
    apply_all,
    body_of,
    campaign,
    envelope,
    event_count,
    post_signed,
    recipient,
    request,
    status_item,
)

ROOT = Path(__file__).resolve().parents[2]


# --- helpers (payload builders and readers: tests/support/webhook_payloads.py) -----------------------


@pytest.fixture()
def world(webhook_world, redis_client):  # the route counts what it stored in Redis (/metrics)
    return webhook_world


# --- verification (GET) --------------------------------------------------------------------------


def test_subscription_check_echoes_the_challenge_for_a_channel_token(world):
    ok = request(
        "GET",
        "/webhooks/whatsapp",
        params={"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "1158201444"},
    )
    assert ok.status_code == 200 and ok.text == "1158201444"
    assert ok.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    "params",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY[:-1], "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY, "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"},
    ],
)
def test_subscription_check_refuses_anything_else(world, params):
    response = request("GET", "/webhooks/whatsapp", params=params)
    assert response.status_code == 403 and "1" not in response.text


# --- signatures -------------------------------------------------------------------------------------


def test_unsigned_or_badly_signed_webhooks_are_refused_and_nothing_is_stored(world, session):
    [rid] = add_recipients(session, world["campaign"].id, 1)
    payload = envelope(
        [status_item(f"wamid.{world['campaign'].id}.0", "delivered")],
        messages=[
            {
                "from": "33612345678",
                "id": "wamid.in.1",
                "timestamp": "1750000000",
                "type": "text",
                "text": {"body": "STOP"},
            }
        ],
    )
    raw = body_of(payload)
    reserialised = json.dumps(payload, indent=2).encode()  # same JSON, other bytes: the signature no longer fits
    attempts = [
        request("POST", "/webhooks/whatsapp", content=raw),  # no header
        request("POST", "/webhooks/whatsapp", content=raw, headers={HEADER: sign(raw, "another-secret")}),
        request("POST", "/webhooks/whatsapp", content=raw, headers={HEADER: "sha256=" + "0" * 64}),
        request("POST", "/webhooks/whatsapp", content=raw, headers={HEADER: sign(raw, SECRET)[7:]}),  # no prefix
        request("POST", "/webhooks/whatsapp", content=reserialised, headers={HEADER: sign(raw, SECRET)}),
    ]
    assert [r.status_code for r in attempts] == [401] * 5
    apply_all()
    with Session(get_engine()) as s:
        assert s.exec(select(WebhookStatusEvent)).all() == []
        assert s.exec(select(InboundMessage)).all() == []
        assert s.exec(select(ContactIdentity)).all() == []
    assert recipient(rid).status == "sent"


def test_a_channel_without_an_app_secret_never_accepts(session, no_background):
    session.add(Channel(name="Bare", kind="whatsapp_cloud", phone_number_id=PNID, app_secret=""))
    session.commit()
    raw = body_of(envelope([status_item("wamid.x", "sent")]))
    assert request("POST", "/webhooks/whatsapp", content=raw, headers={HEADER: sign(raw, "")}).status_code == 401
    assert event_count() == 0


# --- statuses ----------------------------------------------------------------------------------------


def test_duplicates_are_stored_once_and_counted_once(world, session):
    cid = world["campaign"].id
    add_recipients(session, cid, 2)
    items = [status_item(f"wamid.{cid}.0", "delivered"), status_item(f"wamid.{cid}.0", "delivered")]
    assert post_signed(envelope(items)).status_code == 200
    assert post_signed(envelope(items[:1])).status_code == 200  # Meta redelivers
    assert event_count() == 1
    apply_all()
    assert recipient(f"wamid.{cid}.0").status == "delivered"
    c = campaign(cid)
    assert (c.total_recipients, c.sent_count, c.delivered_count) == (2, 1, 1)


def test_each_status_is_kept_as_meta_sent_it_in_the_body_order(world, session):
    """The events table is the record of what Meta said (support reads it): every item's JSON, its
    time, error and recipient, stored in the order of the body (the applier reads them in id order)."""
    cid = world["campaign"].id
    [rid] = add_recipients(session, cid, 1, status="sending")
    wamid = f"wamid.{cid}.0"
    items = [
        status_item(wamid, "sent", ts=1_750_000_010, opaque=f"r:{rid}"),
        status_item(wamid, "failed", ts=1_750_000_020, error=131026),
        {**status_item(wamid, "read", ts=1_750_000_030), "note": 'quotes " and \\ backslash, é'},
    ]
    assert post_signed(envelope(items)).status_code == 200
    with Session(get_engine()) as s:
        rows = s.exec(select(WebhookStatusEvent).order_by(WebhookStatusEvent.id)).all()
    assert [(e.status, e.provider_timestamp.timestamp(), e.error_code, e.error_title) for e in rows] == [
        ("sent", 1_750_000_010, None, ""),
        ("failed", 1_750_000_020, 131026, "Message undeliverable"),
        ("read", 1_750_000_030, None, ""),
    ]
    assert [e.payload for e in rows] == items
    assert [e.recipient_id for e in rows] == [rid, None, None]
    assert {e.message_id for e in rows} == {wamid} and rows[0].received_at is not None


def test_out_of_order_statuses_end_read_with_every_timestamp(world, session):
    cid = world["campaign"].id
    add_recipients(session, cid, 1, status="sending")
    wamid = f"wamid.{cid}.0"
    post_signed(envelope([status_item(wamid, "read", ts=1_750_000_030)]))
    apply_all()
    assert recipient(wamid).status == "read"
    post_signed(
        envelope([status_item(wamid, "delivered", ts=1_750_000_020), status_item(wamid, "sent", ts=1_750_000_010)])
    )
    apply_all()
    r = recipient(wamid)
    assert r.status == "read"  # never backwards
    assert (r.sent_at.timestamp(), r.delivered_at.timestamp(), r.read_at.timestamp()) == (
        1_750_000_010,
        1_750_000_020,
        1_750_000_030,
    )
    assert campaign(cid).read_count == 1


def test_failed_after_sent_is_terminal_with_code_and_title(world, session):
    cid = world["campaign"].id
    add_recipients(session, cid, 1)
    wamid = f"wamid.{cid}.0"
    post_signed(envelope([status_item(wamid, "failed", error=131026)]))
    apply_all()
    post_signed(envelope([status_item(wamid, "delivered")]))  # a late status cannot revive it
    apply_all()
    r = recipient(wamid)
    assert (r.status, r.error_code, r.error_title) == ("failed", 131026, "Message undeliverable")
    assert r.failed_at is not None and r.delivered_at is None
    assert campaign(cid).failed_count == 1


def test_a_status_for_an_unknown_wamid_is_kept_and_applied_when_the_wamid_appears(world, session):
    cid = world["campaign"].id
    [rid] = add_recipients(session, cid, 1, status="sending", wamid=False)
    post_signed(envelope([status_item("wamid.later", "delivered")]))
    apply_all()
    assert recipient(rid).status == "sending"
    with Session(get_engine()) as s:
        [event] = s.exec(select(WebhookStatusEvent)).all()
        assert event.applied_at is None  # kept, waiting
        row = s.get(CampaignRecipient, rid)
        row.message_id, row.status = "wamid.later", "sent"  # what the sender writes after Meta's answer
        s.add(row)
        s.commit()
    apply_all()
    assert recipient(rid).status == "delivered"
    with Session(get_engine()) as s:
        assert s.exec(select(WebhookStatusEvent)).one().applied_at is not None


def test_callback_data_reconciles_a_row_stuck_in_sending_without_wamid(world, session):
    cid = world["campaign"].id
    [rid, other] = add_recipients(session, cid, 2, status="sending", wamid=False)
    post_signed(
        envelope(
            [
                status_item("wamid.recovered", "sent", opaque=str(rid)),
                status_item("wamid.recovered", "delivered", opaque=str(rid)),
            ]
        )
    )
    apply_all()
    r = recipient(rid)
    assert (r.status, r.message_id) == ("delivered", "wamid.recovered")
    assert recipient(other).status == "sending"
    # Later statuses match by the stored wamid, even without callback data.
    post_signed(envelope([status_item("wamid.recovered", "read")]))
    apply_all()
    assert recipient(rid).status == "read"


def test_the_campaign_finishes_when_reconciliation_settles_its_last_row(world, session):
    cid = world["campaign"].id
    [rid] = add_recipients(session, cid, 1, status="sending", wamid=False)
    post_signed(envelope([status_item("wamid.last", "sent", opaque=f"r:{rid}")]))
    apply_all()
    c = campaign(cid)
    assert c.status == "sent" and c.finished_at is not None and c.sent_count == 1


def test_statuses_of_another_number_are_refused_unless_its_secret_signed_them(world, session):
    session.add(Channel(name="Other", kind="whatsapp_cloud", phone_number_id="999", app_secret="other-secret"))
    session.commit()
    payload = envelope([status_item("wamid.z", "sent")], pnid="999")
    assert post_signed(payload, secret=SECRET).status_code == 200  # our secret cannot speak for number 999
    assert event_count() == 0
    assert post_signed(payload, secret="other-secret").status_code == 200
    with Session(get_engine()) as s:
        event = s.exec(select(WebhookStatusEvent)).one()
        assert event.channel_id == s.exec(select(Channel.id).where(Channel.name == "Other")).one()


def test_ten_thousand_shuffled_statuses_end_in_the_right_states(world, session):
    cid = world["campaign"].id
    n = 2500
    add_recipients(session, cid, n, status="sending", wamid=False)
    with Session(get_engine()) as s:  # the sender stored the wamids of the first 2,000 only (others: crash)
        rows = s.exec(
            select(CampaignRecipient).where(CampaignRecipient.campaign_id == cid).order_by(CampaignRecipient.id)
        ).all()
        for i, row in enumerate(rows[:2000]):
            row.message_id, row.status = f"wamid.bulk.{i}", "sent"
            s.add(row)
        s.commit()
        ids = [r.id for r in rows]
    expected, items = {}, []
    rng = random.Random(7)
    for i, rid in enumerate(ids):
        wamid = f"wamid.bulk.{i}"
        if i % 10 == 0:
            chain, expected[rid] = ["sent", "failed"], "failed"
        elif i % 3 == 0:
            chain, expected[rid] = ["sent", "delivered"], "delivered"
        else:
            chain, expected[rid] = ["sent", "delivered", "read"], "read"
        items += [status_item(wamid, st, opaque=str(rid), error=131026 if st == "failed" else None) for st in chain]
    items += rng.sample(items, 10_000 - len(items))  # top up with duplicates to 10,000
    rng.shuffle(items)
    assert len(items) == 10_000

    async def post_all():
        transport = httpx.ASGITransport(app=build_http_api())
        async with httpx.AsyncClient(transport=transport, base_url="http://hubcast.test") as client:
            for start in range(0, len(items), 100):  # batches like the Sandbox's
                raw = body_of(envelope(items[start : start + 100]))
                response = await client.post("/webhooks/whatsapp", content=raw, headers={HEADER: sign(raw, SECRET)})
                assert response.status_code == 200

    asyncio.run(post_all())
    with Session(get_engine()) as s:
        passes = 0
        while apply_pending_statuses(s, limit=2000).applied:
            s.commit()
            passes += 1
        s.commit()
    assert passes >= 3  # applied in batches, not in one go
    with Session(get_engine()) as s:
        final = dict(
            s.exec(
                select(CampaignRecipient.id, CampaignRecipient.status).where(CampaignRecipient.campaign_id == cid)
            ).all()
        )
        assert final == expected
        assert s.exec(select(WebhookStatusEvent).where(WebhookStatusEvent.applied_at.is_(None))).all() == []
    c = campaign(cid)
    assert c.status == "sent"  # the last reconciled rows settled the campaign
    assert (c.read_count, c.delivered_count, c.failed_count) == (
        sum(v == "read" for v in expected.values()),
        sum(v == "delivered" for v in expected.values()),
        sum(v == "failed" for v in expected.values()),
    )


# --- inbound messages ------------------------------------------------------------------------------


def test_stop_unsubscribes_the_whatsapp_identity_and_is_audit_logged(world, session):
    contact = Contact(first_name="Ana")
    session.add(contact)
    session.commit()
    session.add(ContactIdentity(contact_id=contact.id, channel_type="whatsapp", address="+33612345678"))
    session.commit()
    message = {
        "from": "33612345678",
        "id": "wamid.in.stop",
        "timestamp": "1750000000",
        "type": "text",
        "text": {"body": " stop "},
    }
    assert post_signed(envelope(messages=[message])).status_code == 200
    assert post_signed(envelope(messages=[message])).status_code == 200  # redelivered: recorded once
    with Session(get_engine()) as s:
        identity = s.exec(select(ContactIdentity)).one()
        assert identity.subscribed is False
        audits = s.exec(select(AuditLog).where(AuditLog.action == "contact.unsubscribed")).all()
        assert len(audits) == 1
        assert audits[0].detail["address"] == "+33612345678" and audits[0].detail["keyword"] == "stop"
        assert len(s.exec(select(InboundMessage)).all()) == 1


# --- the real thing: Sandbox process -> signed webhooks -> a real server of the app ----------------


def _wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"{url} process exited: {log.read_text()[-2000:]}")
        return http_ok(url)

    wait_until(up, timeout, message=f"{url} answering (log: {log})")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def test_sandbox_webhooks_reach_a_real_server_and_are_applied(world, session, redis_url, tmp_path):
    cid = world["campaign"].id
    [rid, stuck] = add_recipients(session, cid, 2, status="sending", wamid=False)
    app_port, sandbox_port = free_port(), free_port()
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "REDIS_URL": redis_url,
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "HUBCAST_DATA_DIR": os.environ["HUBCAST_DATA_DIR"],
    }
    app_log, sandbox_log = tmp_path / "app.log", tmp_path / "sandbox.log"
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from app.whatsapp.sandbox.server import serve; "
            "from app.http_api import build_http_api; serve(build_http_api(), '127.0.0.1', int(sys.argv[1]))",
            str(app_port),
        ],
        cwd=ROOT,
        env=env,
        stdout=open(app_log, "wb"),
        stderr=subprocess.STDOUT,
    )
    sandbox = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app.whatsapp.sandbox",
            "--port",
            str(sandbox_port),
            "--app-secret",
            SECRET,
            "--phone-number-id",
            PNID,
            "--webhook-url",
            f"http://127.0.0.1:{app_port}/webhooks/whatsapp",
            "--sent-delay",
            "0.05,0.1",
            "--delivered-delay",
            "0.1,0.2",
            "--read-delay",
            "0.1,0.2",
            "--read-ratio",
            "1",
            "--duplicate-ratio",
            "0.5",
            "--reorder-ratio",
            "1",
            "--seed",
            "3",
            "--access-token",
            "tok",
        ],
        cwd=ROOT,
        env=env,
        stdout=open(sandbox_log, "wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_http(f"http://127.0.0.1:{app_port}/healthz", server, app_log)
        _wait_http(f"http://127.0.0.1:{sandbox_port}/_sandbox/health", sandbox, sandbox_log)
        with httpx.Client(base_url=f"http://127.0.0.1:{sandbox_port}", timeout=5) as c:
            sent = c.post(
                f"/v23.0/{PNID}/messages",
                headers={"Authorization": "Bearer tok"},
                json={
                    "messaging_product": "whatsapp",
                    "recipient_type": "individual",
                    "to": "+33612345678",
                    "type": "template",
                    "template": {
                        "name": "spring_sale",
                        "language": {"code": "en_US"},
                        "components": [
                            {"type": "header", "parameters": [{"type": "text", "text": "30%"}]},
                            {
                                "type": "body",
                                "parameters": [
                                    {"type": "text", "text": "Ana"},
                                    {"type": "text", "text": "X"},
                                    {"type": "text", "text": "May 2"},
                                ],
                            },
                        ],
                    },
                    "biz_opaque_callback_data": str(rid),
                },
            )
            assert sent.status_code == 200, sent.text
            c.post(
                "/_sandbox/inbound",
                headers={"Authorization": "Bearer tok"},
                json={"from": "+33610000001", "text": "ARRÊT"},
            )
        # The Sandbox's status delays, then the server's applier.
        wait_until(
            lambda: recipient(rid).status == "read" and recipient(rid).delivered_at,
            20,
            message="the read status applied",
        )
        r = recipient(rid)
        assert (r.status, r.message_id) == ("read", sent.json()["messages"][0]["id"])
        assert r.sent_at and r.delivered_at and r.read_at
        assert recipient(stuck).status == "sending"
        with Session(get_engine()) as s:
            identity = s.exec(select(ContactIdentity).where(ContactIdentity.address == "+33610000001")).one()
            assert identity.subscribed is False
        assert campaign(cid).read_count == 1
    finally:
        _stop(sandbox)
        _stop(server)


def test_a_chunked_body_past_the_limit_is_refused_while_it_streams(world):
    from app.http_api import MAX_WEBHOOK_BYTES

    async def body():
        for _ in range(MAX_WEBHOOK_BYTES // 65536 + 50):  # no Content-Length: the server learns the size by reading
            yield b" " * 65536

    async def post():
        transport = httpx.ASGITransport(app=build_http_api())
        async with httpx.AsyncClient(transport=transport, base_url="http://hubcast.test") as client:
            return await client.post("/webhooks/whatsapp", content=body(), headers={HEADER: "sha256=" + "0" * 64})

    response = asyncio.run(post())
    assert response.status_code == 413
    assert event_count() == 0
