"""CloudApiClient against httpx.MockTransport: exact requests, error parsing, ambiguity, paging."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import httpx
import pytest

from app.whatsapp import Messenger
from app.whatsapp.client import CloudApiClient, SendResult, transport_failure
from app.whatsapp.errors import WhatsAppApiError

BASE = "https://graph.example.test"


def make_client(handler, **kw) -> CloudApiClient:
    return CloudApiClient(BASE, "v23.0", "1111", "2222", "tok-123", transport=httpx.MockTransport(handler), **kw)


def run(coro):
    return asyncio.run(coro)


def send(client: CloudApiClient, **kw):
    args = dict(
        to="+33612345678",
        template_name="spring_sale",
        language_code="en_US",
        components=[{"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}],
        biz_opaque_callback_data="r:42",
    )
    args.update(kw)

    async def go():
        async with client:
            return await client.send_template(**args)

    return run(go())


def graph_error(status: int, code: int, message: str, **extra) -> httpx.Response:
    return httpx.Response(
        status,
        json={"error": {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "Ab", **extra}},
    )


def test_send_template_posts_exactly_metas_body_with_bearer_token():
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["request"] = request
        return httpx.Response(
            200,
            json={
                "messaging_product": "whatsapp",
                "contacts": [{"input": "+33612345678", "wa_id": "33612345678"}],
                "messages": [{"id": "wamid.ABC", "message_status": "accepted"}],
            },
        )

    result = send(make_client(handler))
    assert result == SendResult(message_id="wamid.ABC", wa_id="33612345678", message_status="accepted")
    request = seen["request"]
    assert request.method == "POST" and str(request.url) == f"{BASE}/v23.0/1111/messages"
    assert request.headers["authorization"] == "Bearer tok-123"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "+33612345678",
        "type": "template",
        "template": {
            "name": "spring_sale",
            "language": {"code": "en_US"},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}],
        },
        "biz_opaque_callback_data": "r:42",
    }


def test_send_without_components_or_callback_data_omits_them():
    bodies = []

    def handler(request):
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json={"messages": [{"id": "wamid.X"}]})

    assert send(make_client(handler), components=None, biz_opaque_callback_data=None).message_id == "wamid.X"
    assert "components" not in bodies[0]["template"] and "biz_opaque_callback_data" not in bodies[0]


@pytest.mark.parametrize(
    "response,code,kind,flag",
    [
        (
            graph_error(
                400,
                130429,
                "(#130429) Rate limit hit",
                error_data={"details": "Cloud API message throughput has been reached."},
            ),
            130429,
            "retryable",
            "rate_limited",
        ),
        (
            graph_error(
                400,
                132001,
                "(#132001) Template name does not exist in the translation",
                error_data={"details": "template name (x) does not exist in en_US"},
            ),
            132001,
            "stop_campaign",
            "template_paused",
        ),
        (graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token"), 190, "stop_campaign", None),
        (graph_error(400, 131056, "(#131056) pair rate limit hit"), 131056, "retryable", "recipient_only_backoff"),
        (
            graph_error(400, 131050, "(#131050) User has stopped marketing messages"),
            131050,
            "permanent",
            "unsubscribe_contact",
        ),
    ],
)
def test_graph_errors_are_parsed_and_classified(response, code, kind, flag):
    with pytest.raises(WhatsAppApiError) as info:
        send(make_client(lambda request: response))
    exc = info.value
    assert exc.code == code and exc.classification.kind.value == kind and not exc.ambiguous
    assert exc.error.http_status == response.status_code and exc.error.fbtrace_id == "Ab"
    if flag:
        assert getattr(exc.classification, flag)
    if code == 132001:
        assert exc.error.details == "template name (x) does not exist in en_US"


def test_http_429_is_retryable_after_metas_wait_and_non_json_500_is_retried():
    with pytest.raises(WhatsAppApiError) as info:
        send(make_client(lambda r: httpx.Response(429, headers={"Retry-After": "3"}, text="slow down")))
    assert info.value.retryable and info.value.classification.rate_limited and info.value.retry_after == 3.0
    with pytest.raises(WhatsAppApiError) as info:
        send(make_client(lambda r: httpx.Response(500, text="<html>oops</html>")))
    assert info.value.retryable and not info.value.ambiguous and info.value.title == "HTTP 500"


@pytest.mark.parametrize("status", [502, 504])
def test_gateway_error_without_a_graph_body_is_ambiguous_never_resent(status):
    # Issue 12 point 10: the proxy in front of Meta forwarded the request and lost its answer.
    with pytest.raises(WhatsAppApiError) as info:
        send(make_client(lambda r: httpx.Response(status, text="<html>bad gateway</html>")))
    assert info.value.ambiguous and f"HTTP {status}" in info.value.title


def test_gateway_error_with_a_graph_body_is_metas_answer():
    with pytest.raises(WhatsAppApiError) as info:
        send(make_client(lambda r: graph_error(502, 131000, "(#131000) Something went wrong")))
    assert not info.value.ambiguous and info.value.classification.server_trouble


def test_business_use_case_usage_header_gives_the_wait():
    usage = json.dumps({"2222": [{"type": "whatsapp_business_management", "estimated_time_to_regain_access": 2}]})
    with pytest.raises(WhatsAppApiError) as info:
        response = graph_error(400, 80007, "(#80007) Rate limit issues")
        response.headers["X-Business-Use-Case-Usage"] = usage
        send(make_client(lambda r: response))
    assert info.value.classification.rate_limited and info.value.retry_after == 120.0


def raising(exc: Exception):
    def handler(request):
        raise exc

    return handler


@pytest.mark.parametrize(
    "exc,title,ambiguous",
    [
        (httpx.ConnectError("refused"), "Connection error", False),
        (httpx.ConnectTimeout("connect"), "Timeout", False),
        (httpx.PoolTimeout("pool"), "Timeout", False),
        (httpx.ReadTimeout("read"), "Timeout", True),  # the body may have reached Meta
        (httpx.WriteTimeout("write"), "Timeout", True),
        (httpx.RemoteProtocolError("server disconnected"), "Connection error", True),
        (httpx.ReadError("reset"), "Connection error", True),
    ],
)
def test_network_failures_are_retryable_with_honest_ambiguity(exc, title, ambiguous):
    with pytest.raises(WhatsAppApiError) as info:
        send(make_client(raising(exc)))
    error = info.value
    assert error.code is None and error.title == title and error.retryable and error.ambiguous is ambiguous


def _mapped(aio_exc: Exception, httpx_type: type) -> Exception:
    """What httpx-aiohttp raises: a coarse httpx exception `from` the aiohttp one."""
    try:
        try:
            raise aio_exc
        except Exception as inner:
            raise httpx_type(str(inner)) from inner
    except Exception as outer:
        return outer


class _Key:
    host, port, ssl, is_ssl = "127.0.0.1", 9, None, False


@pytest.mark.parametrize(
    "exc,title,ambiguous",
    [
        # httpx-aiohttp maps all of these to httpx.ConnectTimeout: the aiohttp cause decides.
        (
            _mapped(aiohttp.ClientConnectorError(_Key(), ConnectionRefusedError(111, "refused")), httpx.ConnectTimeout),
            "Connection error",
            False,
        ),
        (_mapped(aiohttp.ServerDisconnectedError(), httpx.ConnectTimeout), "Connection error", True),
        (_mapped(aiohttp.SocketTimeoutError("read"), httpx.ReadTimeout), "Timeout", True),
        (_mapped(aiohttp.ConnectionTimeoutError("connect"), httpx.ConnectTimeout), "Timeout", False),
        (_mapped(aiohttp.ClientPayloadError("truncated"), httpx.ReadError), "Connection error", True),
    ],
)
def test_aiohttp_transport_failures_use_the_original_exception(exc, title, ambiguous):
    error = transport_failure(exc)
    assert error.title == title and error.ambiguous is ambiguous and error.retryable
    assert not transport_failure(exc, idempotent=True).ambiguous


def test_a_2xx_without_a_message_id_is_ambiguous():
    with pytest.raises(WhatsAppApiError) as info:
        send(make_client(lambda r: httpx.Response(200, json={"messaging_product": "whatsapp"})))
    assert info.value.ambiguous and info.value.title == "Unexpected response"
    with pytest.raises(WhatsAppApiError) as info:
        send(make_client(lambda r: httpx.Response(200, text="not json")))
    assert info.value.ambiguous


def _templates(n, start=0):
    return [{"id": str(i), "name": f"t{i}", "language": "en_US"} for i in range(start, start + n)]


def test_list_templates_follows_paging_next_through_all_pages():
    requests = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        after = request.url.params.get("after")
        start = int(after) + 1 if after else 0
        page = _templates(min(25, 60 - start), start)
        paging = {"cursors": {"before": str(start), "after": str(start + len(page) - 1)}}
        if start + len(page) < 60:
            paging["next"] = f"{BASE}/v23.0/2222/message_templates?limit=25&after={start + len(page) - 1}"
        return httpx.Response(200, json={"data": page, "paging": paging})

    async def go():
        async with make_client(handler) as client:
            return [t["name"] async for t in client.list_templates(limit=25)]

    names = run(go())
    assert names == [f"t{i}" for i in range(60)] and len(requests) == 3
    first = requests[0]
    assert first.url.path == "/v23.0/2222/message_templates" and first.headers["authorization"] == "Bearer tok-123"
    assert first.url.params["limit"] == "25"
    assert first.url.params["fields"] == "name,language,status,category,components,parameter_format,id"


def test_list_templates_uses_the_after_cursor_without_next_and_never_sends_the_token_elsewhere():
    hosts = []

    def handler(request: httpx.Request) -> httpx.Response:
        hosts.append(request.url.host)
        after = request.url.params.get("after")
        if after is None:  # a foreign `next` must not be followed: fall back to the cursor
            return httpx.Response(
                200,
                json={
                    "data": _templates(2),
                    "paging": {"cursors": {"after": "c1"}, "next": "https://evil.example/steal?after=c1"},
                },
            )
        if after == "c1":  # a full page without `next`: ask once more with the cursor
            return httpx.Response(200, json={"data": _templates(2, 2), "paging": {"cursors": {"after": "c2"}}})
        return httpx.Response(200, json={"data": []})

    async def go():
        async with make_client(handler) as client:
            return [page async for page in client.template_pages(limit=2)]

    pages = run(go())
    assert [len(p) for p in pages] == [2, 2, 0] and set(hosts) == {"graph.example.test"}


def test_list_templates_stops_on_a_repeated_cursor():
    def handler(request):
        return httpx.Response(
            200,
            json={
                "data": _templates(1),
                "paging": {"cursors": {"after": "same"}, "next": f"{BASE}/v23.0/2222/x?after=same"},
            },
        )

    async def go():
        async with make_client(handler) as client:
            return [t async for t in client.list_templates(limit=1)]

    assert len(run(go())) == 2  # first page, then the same next URL once, then stop


def test_get_phone_number_asks_for_the_connection_test_fields():
    seen = {}

    def handler(request):
        seen["request"] = request
        return httpx.Response(
            200,
            json={
                "id": "1111",
                "display_phone_number": "+1 555-010-0000",
                "verified_name": "Shop",
                "quality_rating": "GREEN",
            },
        )

    async def go():
        async with make_client(handler) as client:
            return await client.get_phone_number()

    info = run(go())
    assert info["verified_name"] == "Shop"
    request = seen["request"]
    assert request.url.path == "/v23.0/1111"
    assert request.url.params["fields"].split(",")[:4] == [
        "id",
        "display_phone_number",
        "verified_name",
        "quality_rating",
    ]


def test_get_errors_are_never_ambiguous():
    async def go():
        async with make_client(raising(httpx.ReadTimeout("read"))) as client:
            await client.get_phone_number()

    with pytest.raises(WhatsAppApiError) as info:
        run(go())
    assert info.value.title == "Timeout" and not info.value.ambiguous


def test_client_satisfies_the_messenger_protocol_and_builds_from_a_channel():
    class Channel:
        api_base_url, api_version, phone_number_id = "http://127.0.0.1:1/", "v23.0", "1"
        business_account_id, access_token = "2", "t"

    client = CloudApiClient.from_channel(Channel(), timeout=3)
    assert isinstance(client, Messenger) and client.base_url == "http://127.0.0.1:1"
    run(client.aclose())


def test_default_transport_is_aiohttp():
    from httpx_aiohttp import AiohttpTransport

    client = CloudApiClient(BASE, "v23.0", "1", "2", "t", max_connections=7)
    transport = client._http._transport
    assert isinstance(transport, AiohttpTransport) and transport.limits.max_connections == 7
    run(client.aclose())
