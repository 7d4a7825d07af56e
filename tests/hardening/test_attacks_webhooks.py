"""Issue 6 item 11: forged, replayed and out-of-order webhooks against a real server of the app's HTTP routes.

`build_http_api()` runs in its own process (tests/support/processes.py: http_api_process)
on the test's database, with its background status applier on, as in production: this test posts over
TCP and only watches the database. Payload builders and readers come from tests/support/webhook_payloads.py.
"""

from __future__ import annotations

import asyncio
import json
import random

import httpx
from sqlalchemy import func
from sqlmodel import Session, select

from app.db import get_engine
from app.models import CampaignRecipient, ContactIdentity, InboundMessage, WebhookStatusEvent
from app.whatsapp.signature import HEADER, sign
from tests.support.hardening import record
from tests.support.processes import http_api_process
from tests.support.wait import wait_until
from tests.support.webhook_payloads import SECRET, add_recipients, body_of, campaign, envelope, recipient, status_item

STATUS_COUNT = 10_000


def _count(model, *where) -> int:
    with Session(get_engine()) as s:
        return s.exec(select(func.count()).select_from(model).where(*where)).one()


def _statuses(cid: int) -> dict[int, str]:
    with Session(get_engine()) as s:
        return dict(
            s.exec(
                select(CampaignRecipient.id, CampaignRecipient.status).where(CampaignRecipient.campaign_id == cid)
            ).all()
        )


def test_forged_replayed_and_shuffled_webhooks(webhook_world, session, redis_url, database_url, tmp_path):
    cid = webhook_world["campaign"].id
    # 2,000 read (sent, delivered, read) + 1,000 delivered + 1,000 failed (sent + 2nd status) = 10,000 statuses.
    ids = add_recipients(session, cid, 4_001, status="sending")
    target, ids = ids[0], ids[1:]
    wamid0 = f"wamid.{cid}.0"
    forged_payload = envelope(
        [status_item(wamid0, "delivered")],
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
    raw = body_of(forged_payload)
    other = body_of(envelope([status_item(wamid0, "read")]))
    forgeries = {
        "no signature": (raw, {}),
        "signed with another secret": (raw, {HEADER: sign(raw, "another-secret")}),
        "all-zero signature": (raw, {HEADER: "sha256=" + "0" * 64}),
        "signature without its sha256= prefix": (raw, {HEADER: sign(raw, SECRET)[7:]}),
        "re-serialised body (same JSON, other bytes)": (
            json.dumps(forged_payload, indent=2).encode(),
            {HEADER: sign(raw, SECRET)},
        ),
        "valid signature of another body": (raw, {HEADER: sign(other, SECRET)}),
        "signed body with a byte appended": (raw + b" ", {HEADER: sign(raw, SECRET)}),
        "empty body with the real body's signature": (b"", {HEADER: sign(raw, SECRET)}),
        "two signatures in one header": (raw, {HEADER: sign(raw, "another-secret") + "," + sign(raw, SECRET)[:20]}),
    }

    expected, items = {}, []
    for i, rid in enumerate(ids):
        wamid = f"wamid.{cid}.{i + 1}"
        if i < 2000:
            chain, expected[rid] = ["sent", "delivered", "read"], "read"
        elif i < 3000:
            chain, expected[rid] = ["sent", "delivered"], "delivered"
        else:
            chain, expected[rid] = ["sent", "failed"], "failed"
        items += [
            status_item(wamid, st, ts=1_750_000_000 + n, error=131026 if st == "failed" else None)
            for n, st in enumerate(chain)
        ]
    assert len(items) == STATUS_COUNT
    random.Random(11).shuffle(items)  # any order: read before sent, failed before sent
    batches = [body_of(envelope(items[i : i + 100])) for i in range(0, len(items), 100)]

    with http_api_process(tmp_path / "api", database_url, redis_url) as url:

        async def post(client, body, headers):
            return (
                await client.post(
                    url + "/webhooks/whatsapp", content=body, headers={"Content-Type": "application/json", **headers}
                )
            ).status_code

        async def forge():
            async with httpx.AsyncClient(timeout=30) as client:
                return {name: await post(client, body, headers) for name, (body, headers) in forgeries.items()}

        forged = asyncio.run(forge())
        stored_after_forgeries = (_count(WebhookStatusEvent), _count(InboundMessage), _count(ContactIdentity))

        # A valid webhook, then the same bytes replayed: one transition, one event.
        async def replay():
            async with httpx.AsyncClient(timeout=30) as client:
                valid = body_of(envelope([status_item(wamid0, "delivered")]))
                first = await post(client, valid, {HEADER: sign(valid, SECRET)})
                wait_until(
                    lambda: recipient(target).status == "delivered", timeout=60, message="first delivery applied"
                )
                before = recipient(target)
                again = [await post(client, valid, {HEADER: sign(valid, SECRET)}) for _ in range(5)]
                return first, before, again

        first, before_replay, replays = asyncio.run(replay())

        # 10,000 shuffled statuses, 4 connections at once, every batch posted twice (Meta retries).
        async def flood():
            async with httpx.AsyncClient(timeout=60) as client:
                sem = asyncio.Semaphore(4)

                async def one(body):
                    async with sem:
                        return await post(client, body, {HEADER: sign(body, SECRET)})

                order = batches + random.Random(12).sample(batches, len(batches))
                return await asyncio.gather(*(one(b) for b in order))

        codes = asyncio.run(flood())

        def settled():
            return _count(WebhookStatusEvent, WebhookStatusEvent.applied_at.is_(None)) == 0 and _statuses(cid) == {
                target: "delivered",
                **expected,
            }

        wait_until(settled, timeout=180, interval=0.5, message="every status applied")
        after_replay = recipient(target)

    final = _statuses(cid)
    wrong = sum(1 for rid, status in expected.items() if final.get(rid) != status)
    c = campaign(cid)
    counters = (c.read_count, c.delivered_count, c.failed_count)
    forged_ok = all(code == 401 for code in forged.values()) and stored_after_forgeries == (0, 0, 0)
    replay_ok = (
        first == 200
        and replays == [200] * 5
        and after_replay.delivered_at == before_replay.delivered_at
        and _count(WebhookStatusEvent, WebhookStatusEvent.message_id == wamid0) == 1
    )
    flood_ok = all(code == 200 for code in codes) and wrong == 0 and counters == (2000, 1001, 1000)
    record(
        "handlers",
        "webhooks with missing / wrong / re-serialised signatures (real server)",
        ok=forged_ok,
        checked=len(forged),
        refused_correctly=sum(1 for v in forged.values() if v == 401),
        allowed_correctly=0,
        stored=sum(stored_after_forgeries),
    )
    record(
        "input",
        "replayed valid webhook (5 replays)",
        ok=replay_ok,
        detail=f"answers {first} then {replays}; one event stored, delivered_at unchanged",
    )
    record(
        "input",
        f"{STATUS_COUNT:,} out-of-order statuses (each batch posted twice, 4 connections)",
        ok=flood_ok,
        detail=f"{len(codes)} POSTs, {sum(c == 200 for c in codes)} answered 200; {wrong} recipients in a wrong "
        f"final state; read/delivered/failed counters {counters}",
    )
    assert forged == {name: 401 for name in forgeries}
    assert stored_after_forgeries == (0, 0, 0)  # no status, no inbound STOP, no opt-out
    assert (first, replays) == (200, [200] * 5)
    assert after_replay.delivered_at == before_replay.delivered_at and after_replay.status == "delivered"
    assert _count(WebhookStatusEvent, WebhookStatusEvent.message_id == wamid0) == 1
    assert all(code == 200 for code in codes)
    assert wrong == 0
    assert counters == (2000, 1001, 1000)
