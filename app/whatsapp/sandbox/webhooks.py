"""Signed status and inbound-message webhooks, posted the way Meta posts them.

Every accepted message gets a timeline (sent -> delivered -> read for a share of them, or failed for
the numbers the failure rules match). Due statuses wait in a heap; a single loop pops everything
due within a short window and posts it as one webhook (up to `webhook_batch_max` statuses), so
throughput stays high when thousands of statuses are due per second. When the receiver is slow,
fewer POSTs are in flight and batches simply grow. Failed POSTs are retried with backoff, then
dropped and counted (Meta gives up too, after longer).

Options for tests: `duplicate_ratio` posts some statuses twice; `reorder_ratio` swaps the posting
order of a message's last two statuses (their timestamps stay true), as Meta sometimes does.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import logging
import random
import re
import secrets
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import httpx

from app.whatsapp.errors import META_ERROR_TITLES
from app.whatsapp.http import build_async_client
from app.whatsapp.signature import HEADER, sign

from .config import SandboxConfig

log = logging.getLogger(__name__)

ERROR_DETAILS = {
    131026: "Message Undeliverable.",
    131049: "In order to maintain a healthy ecosystem engagement, the message failed to be delivered.",
    131047: "Message failed to send because more than 24 hours have passed since the customer last replied "
    "to this number.",
    131050: "Unable to deliver the message. This recipient has chosen to stop receiving marketing messages "
    "on WhatsApp from your business.",
}


def new_wamid() -> str:
    return "wamid.HBgL" + secrets.token_urlsafe(36)


def status_error(code: int) -> dict[str, Any]:
    title = META_ERROR_TITLES.get(code, "Message failed")
    return {
        "code": code,
        "title": title,
        "message": title,
        "error_data": {"details": ERROR_DETAILS.get(code, title)},
        "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
    }


class WebhookDispatcher:
    def __init__(
        self, config: SandboxConfig, rng: random.Random, client_factory: Callable[[], httpx.AsyncClient] | None = None
    ):
        self.config = config
        self.rng = rng
        self._client_factory = client_factory
        self._heap: list[tuple[float, int, str, dict[str, Any]]] = []
        self._seq = itertools.count()
        self._wakeup = asyncio.Event()
        self._loop_task: asyncio.Task | None = None
        self._inflight: set[asyncio.Task] = set()
        self._client: httpx.AsyncClient | None = None
        self.stats = {
            "posts": 0,
            "statuses_posted": 0,
            "messages_posted": 0,
            "changes_posted": 0,
            "post_retries": 0,
            "posts_dropped": 0,
            "statuses_dropped_no_url": 0,
            "pending": 0,
        }
        self.recent_failures: deque[dict[str, Any]] = deque(maxlen=50)

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        self._client = (self._client_factory or self._default_client)()
        self._loop_task = asyncio.create_task(self._run(), name="sandbox-webhooks")

    def _default_client(self) -> httpx.AsyncClient:
        return build_async_client(
            timeout=self.config.webhook_timeout, max_connections=max(4, self.config.webhook_concurrency * 2)
        )

    async def stop(self) -> None:
        if self._loop_task:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        if self._inflight:
            await asyncio.wait(self._inflight, timeout=2)
            for task in self._inflight:
                task.cancel()
        if self._client:
            await self._client.aclose()

    def clear(self) -> None:
        self._heap.clear()
        for key in self.stats:
            self.stats[key] = 0

    # --- planning ------------------------------------------------------------------------------

    def _delay(self, bounds: tuple[float, float]) -> float:
        return self.rng.uniform(*bounds)

    def plan_message(
        self,
        *,
        wamid: str,
        wa_id: str,
        biz_opaque: str | None,
        category: str,
        failure_code: int | None,
        delay_s: float = 0.0,
    ) -> None:
        """Schedule the statuses of one accepted message (`delay_s` later: a message WhatsApp held)."""
        cfg, now_mono, now_wall = self.config, time.monotonic() + delay_s, time.time() + delay_s
        events: list[tuple[float, dict[str, Any]]] = []  # (offset from now, status item)

        def item(status: str, offset: float, **extra: Any) -> dict[str, Any]:
            data = {"id": wamid, "status": status, "timestamp": str(int(now_wall + offset)), "recipient_id": wa_id}
            if biz_opaque is not None:
                data["biz_opaque_callback_data"] = biz_opaque
            data.update(extra)
            return data

        if failure_code is not None:
            at = self._delay(cfg.failed_delay)
            events.append((at, item("failed", at, errors=[status_error(failure_code)])))
        else:
            pricing = {"billable": True, "pricing_model": "PMP", "category": category.lower(), "type": "regular"}
            conversation_id = secrets.token_hex(16)
            sent_at = self._delay(cfg.sent_delay)
            delivered_at = sent_at + self._delay(cfg.delivered_delay)
            events.append(
                (
                    sent_at,
                    item(
                        "sent",
                        sent_at,
                        pricing=pricing,
                        conversation={
                            "id": conversation_id,
                            "expiration_timestamp": str(int(now_wall + sent_at + 86400)),
                            "origin": {"type": category.lower()},
                        },
                    ),
                )
            )
            events.append(
                (
                    delivered_at,
                    item(
                        "delivered",
                        delivered_at,
                        pricing=pricing,
                        conversation={"id": conversation_id, "origin": {"type": category.lower()}},
                    ),
                )
            )
            if self.rng.random() < cfg.read_ratio:
                read_at = delivered_at + self._delay(cfg.read_delay)
                events.append((read_at, item("read", read_at)))
            if len(events) >= 2 and self.rng.random() < cfg.reorder_ratio:
                # Post the last status first; a tiny gap keeps the swap even when delays are zero.
                (_, first), (b, second) = events[-2], events[-1]
                events[-2:] = [(b + 0.1, first), (b, second)]
        for offset, status in list(events):
            if self.rng.random() < cfg.duplicate_ratio:
                events.append((offset + self.rng.uniform(0.05, 0.5), dict(status)))
        for offset, status in events:
            self._push(now_mono + offset, "status", status)

    def plan_inbound(
        self,
        *,
        wa_id: str,
        name: str,
        text: str = "",
        button: dict[str, str] | None = None,
        context_id: str | None = None,
    ) -> str:
        wamid = new_wamid()
        message: dict[str, Any] = {"from": wa_id, "id": wamid, "timestamp": str(int(time.time()))}
        if button:
            message.update(type="button", button={"payload": button.get("payload", ""), "text": button.get("text", "")})
        else:
            message.update(type="text", text={"body": text})
        if context_id:
            message["context"] = {"from": _digits(self.config.display_phone_number), "id": context_id}
        self._push(
            time.monotonic(), "message", {"contact": {"profile": {"name": name}, "wa_id": wa_id}, "message": message}
        )
        return wamid

    def plan_change(self, field: str, value: dict[str, Any]) -> None:
        """A webhook of another field than `messages` (template status, quality, category, phone number
        quality, account update, user preferences), posted at once, one per webhook, signed the same way."""
        self._push(time.monotonic(), "change", {"field": field, "value": value})

    def _push(self, due: float, kind: str, item: dict[str, Any]) -> None:
        heapq.heappush(self._heap, (due, next(self._seq), kind, item))
        self.stats["pending"] = len(self._heap)
        self._wakeup.set()

    # --- delivery ------------------------------------------------------------------------------

    def _value(self) -> dict[str, Any]:
        return {
            "messaging_product": "whatsapp",
            "metadata": {
                "display_phone_number": _digits(self.config.display_phone_number),
                "phone_number_id": self.config.phone_number_id,
            },
        }

    def _envelope(self, value: dict[str, Any]) -> dict[str, Any]:
        return {
            "object": "whatsapp_business_account",
            "entry": [{"id": self.config.waba_id, "changes": [{"value": value, "field": "messages"}]}],
        }

    async def _run(self) -> None:
        while True:
            if not self._heap:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            wait = self._heap[0][0] + self.config.webhook_batch_window_ms / 1000 - time.monotonic()
            backlog = len(self._inflight) >= self.config.webhook_concurrency
            if wait > 0 or backlog:
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), timeout=max(wait, 0.01))
                except TimeoutError:
                    pass
                continue
            now = time.monotonic()
            statuses: list[dict[str, Any]] = []
            while self._heap and self._heap[0][0] <= now and len(statuses) < self.config.webhook_batch_max:
                _, _, kind, item = heapq.heappop(self._heap)
                if kind == "status":
                    statuses.append(item)
                elif kind == "change":
                    change = {"value": item["value"], "field": item["field"]}
                    envelope = {
                        "object": "whatsapp_business_account",
                        "entry": [{"id": self.config.waba_id, "time": int(time.time()), "changes": [change]}],
                    }
                    self._spawn(envelope, "changes_posted", 1)
                else:  # inbound messages travel one per webhook, as Meta sends them
                    self._spawn(
                        self._envelope({**self._value(), "contacts": [item["contact"]], "messages": [item["message"]]}),
                        "messages_posted",
                        1,
                    )
            self.stats["pending"] = len(self._heap)
            if statuses:
                self._spawn(self._envelope({**self._value(), "statuses": statuses}), "statuses_posted", len(statuses))

    def _spawn(self, payload: dict[str, Any], counter: str, count: int) -> None:
        task = asyncio.create_task(self._deliver(payload, counter, count))
        self._inflight.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self._inflight.discard(task)
        self._wakeup.set()  # a free slot: the loop may post the backlog

    async def _deliver(self, payload: dict[str, Any], counter: str, count: int) -> None:
        url = self.config.webhook_url
        if not url:
            self.stats["statuses_dropped_no_url"] += count
            return
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            HEADER: sign(body, self.config.app_secret),
            "User-Agent": "facebookexternalua",
        }
        assert self._client is not None
        error = ""
        for attempt in range(self.config.webhook_retries + 1):
            if attempt:
                self.stats["post_retries"] += 1
                await asyncio.sleep(min(8.0, 0.25 * 2**attempt) * self.rng.uniform(0.8, 1.2))
            try:
                response = await self._client.post(
                    url, content=body, headers=headers, timeout=self.config.webhook_timeout
                )
                if response.is_success:
                    self.stats["posts"] += 1
                    self.stats[counter] += count
                    return
                error = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                cause = exc.__cause__ or exc  # httpx-aiohttp's mapping hides what happened
                error = f"{type(cause).__name__}: {cause}"
        self.stats["posts_dropped"] += 1
        self.recent_failures.append({"at": time.time(), "url": url, "error": error, "items": count})
        log.warning(
            "sandbox: webhook to %s dropped after %d attempts (%s)", url, self.config.webhook_retries + 1, error
        )


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value)
