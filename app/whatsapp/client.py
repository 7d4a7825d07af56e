"""An async client for the WhatsApp Cloud API (and the Sandbox, which answers the same way).

One instance per channel and process, reused for many sends: it owns a connection pool. Every
failure surfaces as `WhatsAppApiError` carrying Meta's error, its classification and `ambiguous`:
True when the request may have reached Meta (a read timeout or a dropped connection after the
body was written). WhatsApp has no idempotency key, so an ambiguous send must not be repeated
blindly; the sender marks it unknown and lets the status webhook (which echoes
`biz_opaque_callback_data`) settle it. It implements `app.whatsapp.messenger.Messenger`, the only
thing the campaign sender knows of it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from app.whatsapp.errors import (
    RETRYABLE,
    Classification,
    WhatsAppApiError,
    WhatsAppError,
    classify,
    parse_error_response,
)
from app.whatsapp.http import KEEPALIVE_EXPIRY_S, build_async_client
from app.whatsapp.messenger import Messenger, SendResult

try:
    import aiohttp
except ImportError:  # pragma: no cover
    aiohttp = None  # type: ignore[assignment]

TEMPLATE_FIELDS = ("name", "language", "status", "category", "components", "parameter_format", "id")
PHONE_NUMBER_FIELDS = (
    "id",
    "display_phone_number",
    "verified_name",
    "quality_rating",
    "code_verification_status",
    "name_status",
    "platform_type",
    "throughput",
    "messaging_limit_tier",  # Meta's daily messaging limit (app/services/channels/messaging_limit.py)
)
USER_AGENT = "Hubcast/0.1 (+https://github.com/hubcast)"


def template_message(
    to: str,
    template_name: str,
    language_code: str,
    components: Sequence[Mapping[str, Any]] | None,
    biz_opaque_callback_data: str | None,
) -> dict[str, Any]:
    """The send request's JSON object (Meta's template message); `CloudApiClient._send_body` encodes the same
    object faster for the campaign sender."""
    template: dict[str, Any] = {"name": template_name, "language": {"code": language_code}}
    if components:
        template["components"] = list(components)
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "template",
        "template": template,
    }
    if biz_opaque_callback_data is not None:
        body["biz_opaque_callback_data"] = biz_opaque_callback_data
    return body


class CloudApiClient(Messenger):
    """The production `Messenger` (plus template listing and the connection test), over HTTP."""

    def __init__(
        self,
        base_url: str,
        api_version: str,
        phone_number_id: str,
        business_account_id: str,
        access_token: str,
        timeout: float = 15,
        max_connections: int = 128,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.api_version = api_version
        self.phone_number_id = phone_number_id
        self.business_account_id = business_account_id
        headers = {"Authorization": f"Bearer {access_token}", "User-Agent": USER_AGENT, "Accept": "application/json"}
        self._http = build_async_client(
            base_url=self.base_url,
            timeout=timeout,
            max_connections=max_connections,
            transport=transport,
            headers=headers,
        )
        # Sends (the hot path: one per recipient) go straight through aiohttp, the same connector the
        # httpx-aiohttp transport would use: httpx's request/response/URL objects on top cost about
        # twice aiohttp's own CPU per request (profiled in bench/results/dispatch.md). An injected
        # transport (tests) keeps every request on httpx.
        self._fast_send = transport is None and aiohttp is not None
        self._body_heads: dict[tuple[str, str], str] = {}  # the encoded start of a send's JSON, per template
        self._session_args = (headers, timeout, max_connections)
        self._session: Any = None
        self._proxy: tuple[Any, Any] = (None, None)

    @classmethod
    def from_channel(cls, channel: Any, **kwargs: Any) -> CloudApiClient:
        """Build from anything shaped like `app.models.Channel` (duck-typed: no database import here)."""
        return cls(
            channel.api_base_url,
            channel.api_version,
            channel.phone_number_id,
            channel.business_account_id,
            channel.access_token,
            **kwargs,
        )

    async def __aenter__(self) -> CloudApiClient:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- messages ------------------------------------------------------------------------------

    async def send_template(
        self,
        to: str,
        template_name: str,
        language_code: str,
        components: Sequence[Mapping[str, Any]] | None = None,
        biz_opaque_callback_data: str | None = None,
    ) -> SendResult:
        path = f"/{self.api_version}/{self.phone_number_id}/messages"
        if self._fast_send:
            payload = await self._post_aiohttp(
                path, self._send_body(to, template_name, language_code, components, biz_opaque_callback_data)
            )
        else:
            body = template_message(to, template_name, language_code, components, biz_opaque_callback_data)
            payload = await self._request("POST", path, json=body)
        messages = payload.get("messages") if isinstance(payload, dict) else None
        message_id = messages[0].get("id") if messages and isinstance(messages[0], dict) else None
        if not message_id:
            # A 2xx without a wamid: Meta may well have sent it. Treat as ambiguous, never resend.
            raise WhatsAppApiError(
                WhatsAppError(code=None, title="Unexpected response", details=str(payload)[:500]),
                Classification(RETRYABLE),
                ambiguous=True,
            )
        contacts = payload.get("contacts") or [{}]
        return SendResult(
            message_id=message_id,
            wa_id=str((contacts[0] or {}).get("wa_id") or ""),
            message_status=str(messages[0].get("message_status") or ""),
        )

    def _send_body(
        self,
        to: str,
        template_name: str,
        language_code: str,
        components: Sequence[Mapping[str, Any]] | None,
        biz_opaque_callback_data: str | None,
    ) -> bytes:
        """The send request's JSON (the same object as `template_message`, the httpx path's), its template part encoded
        once per template and language instead of once per message (the campaign sender's hot path)."""
        key = (template_name, language_code)
        head = self._body_heads.get(key)
        if head is None:
            envelope = {"messaging_product": "whatsapp", "recipient_type": "individual", "type": "template"}
            template = {"name": template_name, "language": {"code": language_code}}
            # both objects left open: the template's components, then the envelope's `to`, follow
            head = _compact_json(envelope)[:-1] + ',"template":' + _compact_json(template)[:-1]
            if len(self._body_heads) < 64:
                self._body_heads[key] = head
        parts = [head]
        if components:
            parts += [',"components":', _compact_json(list(components))]
        parts += ['},"to":', _compact_json(to)]
        if biz_opaque_callback_data is not None:
            parts += [',"biz_opaque_callback_data":', _compact_json(biz_opaque_callback_data)]
        parts.append("}")
        return "".join(parts).encode()

    # --- templates and phone number ------------------------------------------------------------

    async def template_pages(
        self, *, limit: int = 100, fields: Sequence[str] = TEMPLATE_FIELDS
    ) -> AsyncIterator[list[dict]]:
        """Yield each page of the account's templates, following `paging.next` (same origin only: the
        bearer token never goes elsewhere) or else `paging.cursors.after`."""
        path = f"/{self.api_version}/{self.business_account_id}/message_templates"
        base_params = {"limit": str(limit), "fields": ",".join(fields)}
        url: str = path
        params: dict[str, str] | None = dict(base_params)
        seen: set[str] = set()
        while True:
            payload = await self._request("GET", url, params=params)
            data = [t for t in (payload.get("data") or []) if isinstance(t, dict)]
            yield data
            paging = payload.get("paging") or {}
            next_url = paging.get("next")
            after = (paging.get("cursors") or {}).get("after")
            if next_url and self._same_origin(next_url):
                url, params = next_url, None
            elif after and data and (next_url or len(data) >= limit):
                url, params = path, {**base_params, "after": after}
            else:
                return
            key = f"{url}?{params}"
            if key in seen:  # a server handing back the same cursor must not loop us forever
                return
            seen.add(key)

    async def list_templates(self, *, limit: int = 100, fields: Sequence[str] = TEMPLATE_FIELDS) -> AsyncIterator[dict]:
        async for page in self.template_pages(limit=limit, fields=fields):
            for template in page:
                yield template

    async def create_template(
        self, *, name: str, language: str, category: str, components: list, parameter_format: str = "POSITIONAL"
    ) -> dict:
        """POST /{waba_id}/message_templates (Meta reviews it; the Sandbox approves at once)."""
        return await self._request(
            "POST",
            f"/{self.api_version}/{self.business_account_id}/message_templates",
            json={
                "name": name,
                "language": language,
                "category": category,
                "components": components,
                "parameter_format": parameter_format,
            },
        )

    async def get_phone_number(self, fields: Sequence[str] = PHONE_NUMBER_FIELDS) -> dict:
        """The connection test: proves the token works and the phone number id is this account's."""
        return await self._request(
            "GET", f"/{self.api_version}/{self.phone_number_id}", params={"fields": ",".join(fields)}
        )

    # --- plumbing ------------------------------------------------------------------------------

    def _same_origin(self, url: str) -> bool:
        a, b = urlsplit(url), urlsplit(self.base_url)
        return (a.scheme, a.netloc) == (b.scheme, b.netloc)

    async def _request(self, method: str, url: str, **kwargs: Any) -> dict:
        try:
            response = await self._http.request(method, url, **kwargs)
        except (TimeoutError, httpx.HTTPError, OSError) as exc:
            raise transport_failure(exc, idempotent=method == "GET") from exc
        try:
            payload = response.json()
        except ValueError:
            payload = None
        return _payload_or_raise(method, response.status_code, payload, lambda: response.text, response.headers)

    def _aiohttp_session(self) -> Any:
        if self._session is None:  # created inside the running loop, on first use
            headers, timeout, max_connections = self._session_args
            connector = aiohttp.TCPConnector(limit=max_connections, keepalive_timeout=KEEPALIVE_EXPIRY_S)
            # The proxy from the environment (HTTPS_PROXY, NO_PROXY...) is looked up once here: with
            # trust_env=True aiohttp looks it up, and .netrc, in a thread on EVERY request.
            from aiohttp.helpers import get_env_proxy_for_url
            from yarl import URL

            try:
                self._proxy = get_env_proxy_for_url(URL(self.base_url))
            except LookupError:
                self._proxy = (None, None)
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={**headers, "Content-Type": "application/json"},  # the only requests it makes: sends
                trust_env=False,
                cookie_jar=aiohttp.DummyCookieJar(),  # the Graph API sets none: no jar to filter and update per send
                # as httpx.Timeout(timeout) maps through httpx-aiohttp: connect, read and pool wait
                timeout=aiohttp.ClientTimeout(sock_connect=timeout, sock_read=timeout, connect=timeout),
            )
        return self._session

    async def _post_aiohttp(self, path: str, body: bytes) -> dict:
        try:
            session = self._aiohttp_session()
            async with session.post(
                self.base_url + path, data=body, allow_redirects=False, proxy=self._proxy[0], proxy_auth=self._proxy[1]
            ) as response:
                raw = await response.read()
                status, headers = response.status, response.headers
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise transport_failure(exc) from exc
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = None
        return _payload_or_raise("POST", status, payload, lambda: raw.decode("utf-8", "replace"), headers)


def _compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# A gateway error without Meta's error body: the proxy in front of the Graph API gave up on (or lost the answer
# of) a request it had already forwarded, so the message may have gone out (issue 12, point 10).
_GATEWAY_STATUSES = (502, 504)


def _payload_or_raise(method: str, status: int, payload: Any, text, headers: Mapping[str, str] | None) -> dict:
    """The JSON object of a 2xx answer, else the WhatsAppApiError it stands for."""
    if 200 <= status < 300:
        if not isinstance(payload, dict):
            raise WhatsAppApiError(
                WhatsAppError(code=None, title="Unexpected response", details=text()[:500], http_status=status),
                Classification(RETRYABLE),
                ambiguous=method == "POST",
            )
        return payload
    error = parse_error_response(payload, status, raw_text=text() if payload is None else "")
    graph_error = isinstance(payload, dict) and isinstance(payload.get("error"), dict)
    if method == "POST" and status in _GATEWAY_STATUSES and not graph_error:
        error = dataclasses.replace(error, title=f"HTTP {status} without an answer from WhatsApp")
        raise WhatsAppApiError(error, Classification(RETRYABLE), ambiguous=True)
    raise WhatsAppApiError(error, classify(error), retry_after=retry_after_from(headers))


def retry_after_from(headers: Mapping[str, str] | None) -> float | None:
    """Seconds Meta asks us to wait: `Retry-After`, else the longest `estimated_time_to_regain_access`
    (minutes) in `X-Business-Use-Case-Usage`; None when neither says."""
    if not headers:
        return None
    value = headers.get("retry-after") or headers.get("Retry-After")
    try:
        if value is not None:
            return max(0.0, float(value))
    except ValueError:
        pass
    usage = headers.get("x-business-use-case-usage") or headers.get("X-Business-Use-Case-Usage")
    if not usage:
        return None
    try:
        data = json.loads(usage)
    except ValueError:
        return None
    minutes = [
        float(item.get("estimated_time_to_regain_access") or 0)
        for entries in (data.values() if isinstance(data, dict) else [])
        if isinstance(entries, list)
        for item in entries
        if isinstance(item, dict) and isinstance(item.get("estimated_time_to_regain_access"), int | float)
    ]
    return max(minutes) * 60 if minutes and max(minutes) > 0 else None


def _cause_chain(exc: BaseException) -> list[BaseException]:
    chain, seen = [], set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        chain.append(current)
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return chain


def _original(exc: BaseException) -> BaseException:
    """The exception that says what happened. httpx-aiohttp maps aiohttp errors coarsely (a refused
    connection and one dropped after sending both become httpx.ConnectTimeout), so when aiohttp is
    underneath, its own exception is the one to read."""
    chain = _cause_chain(exc)
    if aiohttp is not None:
        for e in chain:
            if isinstance(e, aiohttp.ClientError):
                return e
    return chain[0]


def _never_reached_server(original: BaseException) -> bool:
    """True only when we know no byte of the request left: the connection was never established."""
    not_sent: tuple[type[BaseException], ...] = (
        httpx.ConnectError,
        httpx.ConnectTimeout,
        httpx.PoolTimeout,
        httpx.UnsupportedProtocol,
        ConnectionRefusedError,
        socket.gaierror,
    )
    if aiohttp is not None:
        not_sent += (aiohttp.ClientConnectorError,)
        if hasattr(aiohttp, "ConnectionTimeoutError"):
            not_sent += (aiohttp.ConnectionTimeoutError,)
    return isinstance(original, not_sent)


def transport_failure(exc: BaseException, *, idempotent: bool = False) -> WhatsAppApiError:
    """A network-level failure as a retryable WhatsAppApiError with code None."""
    original = _original(exc)
    timed_out = isinstance(original, (httpx.TimeoutException, asyncio.TimeoutError, TimeoutError))
    title = "Timeout" if timed_out else "Connection error"
    ambiguous = not idempotent and not _never_reached_server(original)
    error = WhatsAppError(code=None, title=title, details=f"{type(original).__name__}: {original}"[:500])
    return WhatsAppApiError(error, Classification(RETRYABLE), ambiguous=ambiguous)
