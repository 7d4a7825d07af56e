"""WhatsApp webhook payloads as Meta sends them, posted signed to the app's routes, and readers of what
was stored. The channel they belong to is the `webhook_world` fixture's (tests/support/webhooks.py)."""

from __future__ import annotations

import json

import httpx
from sqlmodel import Session, select

from app.db import get_engine
from app.http_api import build_http_api
from app.models import Campaign, CampaignRecipient, WebhookStatusEvent
from app.services.inbound.webhook_ingest import apply_pending_statuses
from app.whatsapp.signature import HEADER, sign
from tests.support.wait import run_coroutine

SECRET, PNID, VERIFY = "webhook-app-secret-0123", "100000000000001", "verify-token-abc"


def add_recipients(session, campaign_id: int, n: int, *, status: str = "sent", wamid: bool = True) -> list[int]:
    rows = [
        CampaignRecipient(
            campaign_id=campaign_id,
            address=f"+336{10000000 + i}",
            status=status,
            message_id=f"wamid.{campaign_id}.{i}" if wamid else None,
        )
        for i in range(n)
    ]
    session.add_all(rows)
    session.commit()
    return [r.id for r in rows]


def status_item(wamid: str, status: str, ts: int = 1_750_000_000, opaque: str | None = None, error: int | None = None):
    item = {"id": wamid, "status": status, "timestamp": str(ts), "recipient_id": "33612345678"}
    if opaque is not None:
        item["biz_opaque_callback_data"] = opaque
    if error is not None:
        item["errors"] = [{"code": error, "title": "Message undeliverable", "message": "Message undeliverable"}]
    return item


def envelope(statuses=(), messages=(), pnid: str = PNID) -> dict:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550100000", "phone_number_id": pnid},
    }
    if statuses:
        value["statuses"] = list(statuses)
    if messages:
        value["contacts"] = [{"profile": {"name": "Ana"}, "wa_id": m["from"]} for m in messages]
        value["messages"] = list(messages)
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "200", "changes": [{"value": value, "field": "messages"}]}],
    }


def body_of(payload) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


async def _request(method: str, path: str, **kwargs) -> httpx.Response:
    transport = httpx.ASGITransport(app=build_http_api())
    async with httpx.AsyncClient(transport=transport, base_url="http://hubcast.test") as client:
        return await client.request(method, path, **kwargs)


def request(method: str, path: str, **kwargs) -> httpx.Response:
    """One request to the app's HTTP routes, in-process (ASGI)."""
    return run_coroutine(_request(method, path, **kwargs))


def post_signed(payload, secret: str = SECRET) -> httpx.Response:
    raw = body_of(payload)
    return request(
        "POST",
        "/webhooks/whatsapp",
        content=raw,
        headers={HEADER: sign(raw, secret), "Content-Type": "application/json"},
    )


def post_signed_over_http(base_url: str, payload, secret: str = SECRET) -> httpx.Response:
    """The same POST, to a running server of the app over HTTP."""
    raw = body_of(payload)
    return httpx.post(
        f"{base_url}/webhooks/whatsapp",
        content=raw,
        headers={HEADER: sign(raw, secret), "Content-Type": "application/json"},
        timeout=10,
    )


def apply_all() -> None:
    with Session(get_engine()) as s:
        while apply_pending_statuses(s, limit=5000).applied:
            s.commit()
        s.commit()


def recipient(wamid_or_id) -> CampaignRecipient:
    with Session(get_engine()) as s:
        if isinstance(wamid_or_id, int):
            return s.get(CampaignRecipient, wamid_or_id)
        return s.exec(select(CampaignRecipient).where(CampaignRecipient.message_id == wamid_or_id)).one()


def event_count() -> int:
    with Session(get_engine()) as s:
        return len(s.exec(select(WebhookStatusEvent.id)).all())


def campaign(cid: int) -> Campaign:
    with Session(get_engine()) as s:
        return s.get(Campaign, cid)
