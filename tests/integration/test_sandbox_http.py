"""The Sandbox as a real process on a real port, driven by the real CloudApiClient over HTTP, posting
signed webhooks to a real local receiver. Bounded waits only; processes are killed at teardown."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from app.whatsapp.client import CloudApiClient
from app.whatsapp.errors import WhatsAppApiError
from app.whatsapp.signature import verify
from app.whatsapp.webhooks import parse_webhook
from tests.support.sandbox import free_port, run_sandbox
from tests.support.wait import wait_until

TOKEN = "it-access-token-0123456789"
SECRET = "it-app-secret-abcdef"
PNID, WABA = "100000000000001", "200000000000001"
SPRING = [
    {"type": "header", "parameters": [{"type": "text", "text": "30%"}]},
    {
        "type": "body",
        "parameters": [
            {"type": "text", "text": "Ana"},
            {"type": "text", "text": "SPRING30"},
            {"type": "text", "text": "May 2"},
        ],
    },
]


# --- fixtures -----------------------------------------------------------------------------------


class Receiver:
    """A tiny threaded webhook endpoint that records what it gets (and can fail the first N POSTs)."""

    def __init__(self):
        self.posts: list[dict] = []
        self.fail_next = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    failing = receiver.fail_next > 0
                    receiver.fail_next -= failing
                    if not failing:
                        receiver.posts.append(
                            {"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
                        )
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/whatsapp"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def clear(self):
        with self.lock:
            self.posts.clear()
            self.fail_next = 0

    def statuses(self, wamid: str | None = None):
        with self.lock:
            posts = list(self.posts)
        return [
            s
            for p in posts
            for s in parse_webhook(json.loads(p["body"])).statuses
            if wamid is None or s.message_id == wamid
        ]

    def wait_for(self, predicate, timeout: float = 15.0):
        return wait_until(
            predicate,
            timeout,
            interval=0.05,
            message=f"a webhook condition (posts received: {len(self.posts)} when the wait began)",
        )


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture(scope="module")
def sandbox(receiver, tmp_path_factory):
    with run_sandbox(
        tmp_path_factory.mktemp("sandbox"),
        token=TOKEN,
        secret=SECRET,
        extra=(
            "--webhook-url",
            receiver.url,
            "--sent-delay",
            "0.05,0.1",
            "--delivered-delay",
            "0.15,0.2",
            "--read-delay",
            "0.15,0.2",
            "--failed-delay",
            "0.05,0.1",
            "--read-ratio",
            "1",
            "--webhook-batch-window-ms",
            "20",
        ),
    ) as sb:
        yield sb


@pytest.fixture(autouse=True)
def clean(sandbox, receiver):
    sandbox.admin("POST", "/_sandbox/reset")
    receiver.clear()
    yield


def client(sandbox, token: str = TOKEN, **kw) -> CloudApiClient:
    return CloudApiClient(sandbox.url, "v23.0", PNID, WABA, token, **{"timeout": 5, **kw})


async def send_spring(c: CloudApiClient, to: str = "+33612345678", opaque: str | None = "r:1", components=SPRING):
    return await c.send_template(to, "spring_sale", "en_US", components, opaque)


def run(coro):
    return asyncio.run(coro)


def error_of(coro) -> WhatsAppApiError:
    with pytest.raises(WhatsAppApiError) as info:
        run(coro)
    return info.value


# --- the Cloud API ------------------------------------------------------------------------------


def test_send_template_returns_a_wamid_and_is_logged(sandbox):
    async def go():
        async with client(sandbox) as c:
            return await send_spring(c)

    result = run(go())
    assert result.message_id.startswith("wamid.") and result.wa_id == "33612345678"
    assert result.message_status == "accepted"  # marketing template
    log = sandbox.admin("GET", "/_sandbox/log")
    assert log["total"] == 1 and log["recent"][0]["wamid"] == result.message_id
    assert log["recent"][0]["text"].startswith("Spring Sale: 30% off\nHi Ana")
    lines = sandbox.log_file.read_text().splitlines()
    assert json.loads(lines[-1])["wamid"] == result.message_id


def test_malformed_bodies_are_invalid_parameter(sandbox):
    url = f"{sandbox.url}/v23.0/{PNID}/messages"
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    not_json = httpx.post(url, content=b"{nope", headers=headers)
    no_recipient = httpx.post(
        url,
        json={
            "messaging_product": "whatsapp",
            "type": "template",
            "template": {"name": "spring_sale", "language": {"code": "en_US"}},
        },
        headers=headers,
    )
    for response in (not_json, no_recipient):
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == 100 and error["type"] == "OAuthException" and error["fbtrace_id"]

    async def go():
        async with client(sandbox) as c:
            await send_spring(c, to="not a number")

    exc = error_of(go())
    assert exc.code == 100 and exc.title == "Invalid parameter" and exc.classification.permanent


def test_unknown_template_is_132001(sandbox):
    async def go():
        async with client(sandbox) as c:
            await c.send_template("+33612345678", "no_such_template", "en_US", [])

    exc = error_of(go())
    assert exc.code == 132001 and exc.title == "Template name does not exist in the translation"
    assert exc.error.details == "template name (no_such_template) does not exist in en_US"
    assert exc.classification.stops_campaign and exc.classification.template_paused  # issue 12: pause, keep rows


def test_parameter_count_mismatch_is_132000(sandbox):
    async def go():
        async with client(sandbox) as c:
            await send_spring(c, components=SPRING[:1] + [{"type": "body", "parameters": SPRING[1]["parameters"][:2]}])

    exc = error_of(go())
    assert exc.code == 132000 and "number of localizable_params (2)" in exc.error.details


def test_wrong_token_is_190_and_stops_the_campaign(sandbox):
    async def go():
        async with client(sandbox, token="wrong") as c:
            await send_spring(c)

    exc = error_of(go())
    assert exc.code == 190 and exc.error.http_status == 401 and exc.classification.stops_campaign

    async def phone():
        async with client(sandbox, token="wrong") as c:
            await c.get_phone_number()

    assert error_of(phone()).code == 190
    assert sandbox.admin("GET", "/_sandbox/log")["total"] == 0


def test_rate_cap_rejects_the_excess_with_130429(sandbox):
    sandbox.admin("POST", "/_sandbox/config", json={"mps": 5})

    async def go():
        async with client(sandbox) as c:
            started = time.monotonic()
            results = await asyncio.gather(
                *[send_spring(c, to=f"+3361234{i:03d}9") for i in range(20)], return_exceptions=True
            )
            return results, time.monotonic() - started

    results, elapsed = run(go())
    accepted = [r for r in results if not isinstance(r, Exception)]
    rejected = [r for r in results if isinstance(r, WhatsAppApiError)]
    assert len(accepted) + len(rejected) == 20
    # A burst of one second's worth, then a refill at 5/s for as long as the requests kept arriving.
    assert 5 <= len(accepted) <= 5 + int(elapsed * 5) + 1 and len(rejected) >= 5
    for exc in rejected:
        assert exc.code == 130429 and exc.title == "Rate limit hit" and exc.error.http_status == 400
        assert exc.retryable and exc.classification.rate_limited and not exc.ambiguous
    log = sandbox.admin("GET", "/_sandbox/log")
    assert log["total"] == len(accepted) and log["rejected"] == {"130429": len(rejected)}


def test_undeliverable_number_gets_a_signed_failed_webhook(sandbox, receiver):
    async def go():
        async with client(sandbox) as c:
            return [
                await send_spring(c, to="+33612340000", opaque="r:100"),
                await send_spring(c, to="+33612340001", opaque="r:101"),
            ]

    undeliverable, unhealthy = run(go())  # both accepted: Meta reports these failures by webhook
    wanted = {undeliverable.message_id, unhealthy.message_id}
    by_id = receiver.wait_for(
        lambda: (
            (found := {s.message_id: s for s in receiver.statuses() if s.status == "failed" and s.message_id in wanted})
            and len(found) == 2
            and found
        )
    )
    assert by_id[undeliverable.message_id].errors[0].code == 131026
    assert by_id[undeliverable.message_id].errors[0].title == "Message undeliverable"
    assert by_id[undeliverable.message_id].biz_opaque_callback_data == "r:100"
    assert by_id[unhealthy.message_id].errors[0].code == 131049
    assert [s.status for s in receiver.statuses(undeliverable.message_id)] == ["failed"]
    for post in receiver.posts:
        assert verify(post["body"], post["headers"]["x-hub-signature-256"], SECRET)
        assert not verify(post["body"], post["headers"]["x-hub-signature-256"], "another secret")


def test_sent_delivered_read_arrive_in_order_with_callback_data(sandbox, receiver):
    async def go():
        async with client(sandbox) as c:
            return await send_spring(c, opaque="recipient:4242")

    result = run(go())
    statuses = receiver.wait_for(lambda: (s := receiver.statuses(result.message_id)) and len(s) >= 3 and s)
    assert [s.status for s in statuses] == ["sent", "delivered", "read"]
    assert {s.biz_opaque_callback_data for s in statuses} == {"recipient:4242"}
    assert {s.recipient_id for s in statuses} == {"33612345678"} and {s.phone_number_id for s in statuses} == {PNID}
    assert statuses[0].pricing_category == "marketing" and statuses[0].conversation_id
    assert statuses[0].timestamp <= statuses[1].timestamp <= statuses[2].timestamp
    post = receiver.posts[0]
    assert verify(post["body"], post["headers"]["x-hub-signature-256"], SECRET)
    assert json.loads(post["body"])["entry"][0]["id"] == WABA


def test_many_statuses_are_batched_into_few_posts(sandbox, receiver):
    async def go():
        async with client(sandbox) as c:
            return await asyncio.gather(*[send_spring(c, to=f"+33700{i:04d}99") for i in range(100)])

    results = run(go())
    wamids = {r.message_id for r in results}
    receiver.wait_for(
        lambda: len({(s.message_id, s.status) for s in receiver.statuses() if s.message_id in wamids}) >= 300
    )
    assert len(receiver.posts) < 200  # 300 statuses, batched


def test_duplicates_and_reordering_can_be_switched_on(sandbox, receiver):
    sandbox.admin("POST", "/_sandbox/config", json={"duplicate_ratio": 1, "reorder_ratio": 1})

    async def go():
        async with client(sandbox) as c:
            return await send_spring(c)

    result = run(go())
    statuses = receiver.wait_for(lambda: (s := receiver.statuses(result.message_id)) and len(s) >= 6 and s)
    names = [s.status for s in statuses]
    assert sorted(names) == ["delivered", "delivered", "read", "read", "sent", "sent"]
    assert names.index("read") < names.index("delivered")  # read posted before delivered


def test_list_templates_pages_through_all_templates(sandbox):
    async def go():
        async with client(sandbox) as c:
            return [page async for page in c.template_pages(limit=25)]

    pages = run(go())
    templates = [t for page in pages for t in page]
    assert len(pages) >= 3 and len(templates) >= 66 and len({t["id"] for t in templates}) == len(templates)
    spring = next(t for t in templates if t["name"] == "spring_sale")
    assert (
        spring["language"] == "en_US" and spring["status"] == "APPROVED" and spring["components"][0]["type"] == "HEADER"
    )
    assert set(spring) == {"id", "name", "language", "status", "category", "components", "parameter_format"}


def test_get_phone_number_is_the_connection_test(sandbox):
    async def go():
        async with client(sandbox) as c:
            return await c.get_phone_number()

    info = run(go())
    assert info["id"] == PNID and info["quality_rating"] == "GREEN" and info["verified_name"]
    assert info["display_phone_number"] == "+1 555 010 0000"

    async def wrong_id():
        async with CloudApiClient(sandbox.url, "v23.0", "999", WABA, TOKEN) as c:
            await c.get_phone_number()

    exc = error_of(wrong_id())
    assert exc.code == 100 and exc.error.subcode == 33 and exc.classification.stops_campaign


def test_log_counts_sends_per_recipient(sandbox):
    async def go():
        async with client(sandbox) as c:
            for _ in range(3):
                await send_spring(c, to="+33611111111")
            await send_spring(c, to="33 6 22 22 22 22")

    run(go())
    log = sandbox.admin("GET", "/_sandbox/log")
    assert log["per_recipient"] == {"+33611111111": 3, "+33622222222": 1}
    assert log["duplicates"] == {"+33611111111": 3} and log["total"] == 4


# --- faults -------------------------------------------------------------------------------------


def test_fault_429_and_5xx_windows_are_retryable(sandbox):
    async def go():
        async with client(sandbox) as c:
            sandbox.admin("POST", "/_sandbox/config", json={"rate_limit_for_s": 30})
            limited = await asyncio.gather(send_spring(c), return_exceptions=True)
            sandbox.admin("POST", "/_sandbox/config", json={"rate_limit_for_s": 0, "server_error_for_s": 30})
            broken = await asyncio.gather(send_spring(c), return_exceptions=True)
            sandbox.admin("POST", "/_sandbox/config", json={"server_error_for_s": 0})
            fine = await send_spring(c)
            return limited[0], broken[0], fine

    limited, broken, fine = run(go())
    assert limited.error.http_status == 429 and limited.code == 130429 and limited.classification.rate_limited
    assert broken.error.http_status == 500 and broken.retryable and not broken.ambiguous
    assert fine.message_id.startswith("wamid.")
    assert sandbox.admin("GET", "/_sandbox/log")["total"] == 1


def test_accept_then_hang_is_an_ambiguous_timeout_that_webhooks_settle(sandbox, receiver):
    sandbox.admin("POST", "/_sandbox/config", json={"hang_for_s": 30, "hang_seconds": 5})

    async def go():
        async with client(sandbox, timeout=1) as c:
            await send_spring(c, opaque="recipient:77")

    exc = error_of(go())
    assert exc.title == "Timeout" and exc.code is None and exc.ambiguous and exc.retryable
    log = sandbox.admin("GET", "/_sandbox/log")
    assert log["total"] == 1  # it was sent: resending would message this person twice
    statuses = receiver.wait_for(
        lambda: [s for s in receiver.statuses() if s.biz_opaque_callback_data == "recipient:77"]
    )
    assert statuses[0].message_id == log["recent"][0]["wamid"]


def test_connection_refused_is_retryable_and_not_ambiguous():
    async def go():
        async with CloudApiClient(f"http://127.0.0.1:{free_port()}", "v23.0", PNID, WABA, TOKEN, timeout=3) as c:
            await send_spring(c)

    exc = error_of(go())
    assert exc.code is None and exc.title == "Connection error" and exc.retryable and not exc.ambiguous


def test_failed_webhook_posts_are_retried(sandbox, receiver):
    receiver.fail_next = 2

    async def go():
        async with client(sandbox) as c:
            return await send_spring(c)

    result = run(go())
    receiver.wait_for(lambda: len(receiver.statuses(result.message_id)) >= 3)
    assert sandbox.admin("GET", "/_sandbox/log")["webhooks"]["post_retries"] >= 2


def test_inbound_stop_is_posted_as_a_signed_message_webhook(sandbox, receiver):
    reply = sandbox.admin("POST", "/_sandbox/inbound", json={"from": "+33612345678", "text": "STOP", "name": "Ana"})

    def inbound():
        for post in list(receiver.posts):
            messages = parse_webhook(json.loads(post["body"])).messages
            if messages:
                return post, messages[0]

    post, message = receiver.wait_for(inbound)
    assert verify(post["body"], post["headers"]["x-hub-signature-256"], SECRET)
    assert (message.message_id, message.text, message.from_wa_id, message.profile_name) == (
        reply["id"],
        "STOP",
        "33612345678",
        "Ana",
    )


def test_admin_endpoints_need_the_token(sandbox):
    response = httpx.post(sandbox.url + "/_sandbox/config", json={"mps": 1})
    assert response.status_code == 401 and response.json()["error"]["code"] == 190
    response = httpx.post(
        sandbox.url + "/_sandbox/config", json={"port": 1}, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 400


def test_hundreds_of_concurrent_sends_with_latency(sandbox):
    sandbox.admin("POST", "/_sandbox/config", json={"latency_ms": 150, "mps": 0})

    async def go():
        async with client(sandbox, max_connections=256) as c:
            started = time.monotonic()
            results = await asyncio.gather(*[send_spring(c, to=f"+33710{i:04d}99") for i in range(300)])
            return results, time.monotonic() - started

    results, elapsed = run(go())
    assert len({r.message_id for r in results}) == 300
    assert elapsed < 15  # served concurrently (serially it would take 45 s)
