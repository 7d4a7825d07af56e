"""Issue 13 item 12: every response of the running server carries the security headers (an attack-class row of
the hardening report; it lives with the e2e tests because it needs the built server and its browser fixture,
whose Playwright event loop would break the hardening tests that call asyncio.run after it).

Against the real server (`reflex run --env prod`, the e2e harness's `hubcast`: Granian, the compiled front
end mounted on the backend, as `hubcast web` serves it): a page, a compiled script, the 404 page,
/healthz, both webhook routes, a CSV export refused to a stranger, Reflex's upload route, the Socket.IO
handshake over HTTP and the websocket upgrade on /_event (a raw socket reads the 101 answer; Granian drops headers from an
ASGI websocket accept, so there the middleware's accept message is checked instead). Each must
say: no framing (CSP frame-ancestors 'none' and X-Frame-Options DENY), no MIME sniffing, a Referrer-
Policy, and the CSP itself. HSTS only over https: this server is plain http, so it must NOT send it;
with an https public URL the same builder adds it.
"""

from __future__ import annotations

import dataclasses
import re
import socket
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx
import pytest

from app.security_headers import build_secure
from app.settings import load_settings
from tests.support.hardening import record

pytestmark = pytest.mark.e2e

REQUIRED = {
    "content-security-policy": re.compile(r"frame-ancestors 'none'.*|.*frame-ancestors 'none'"),
    "x-frame-options": re.compile(r"^DENY$"),
    "x-content-type-options": re.compile(r"^nosniff$"),
    "referrer-policy": re.compile(r"^strict-origin-when-cross-origin$"),
}


def _missing(headers) -> list[str]:
    lower = {k.lower(): v for k, v in headers.items()}
    return [name for name, pattern in REQUIRED.items() if not pattern.search(lower.get(name, ""))]


def _websocket_upgrade(base_url: str) -> tuple[int, dict[str, str]]:
    parts = urlsplit(base_url)
    request = (
        "GET /_event/?EIO=4&transport=websocket HTTP/1.1\r\n"
        f"Host: {parts.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        f"Origin: {base_url}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", parts.port), timeout=30) as sock:
        sock.sendall(request.encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    headers = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers


def _headers_added_to_websocket_accept() -> dict[str, str]:
    """What the app's middleware sends when the wrapped app accepts a websocket (raw ASGI messages)."""
    import asyncio

    from app.security_headers import security_headers

    sent: list[dict] = []

    async def accepting_app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept", "headers": [(b"x-from-the-app", b"kept")]})

    async def receive():
        return {"type": "websocket.connect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "websocket", "path": "/_event/", "headers": [], "query_string": b"EIO=4&transport=websocket"}
    # In a thread of its own: Playwright's sync API keeps an event loop running in this one.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, security_headers(accepting_app)(scope, receive, send)).result(timeout=30)
    (accept,) = [m for m in sent if m["type"] == "websocket.accept"]
    return {k.decode().lower(): v.decode() for k, v in accept["headers"]}


def test_every_response_carries_the_security_headers(hubcast):
    base = hubcast.base_url
    found: dict[str, tuple[int, list[str], dict]] = {}
    with httpx.Client(base_url=base, timeout=60, follow_redirects=False) as client:
        page = client.get("/login")
        script = re.search(r'src="(/assets/[^"]+\.js)"|href="(/assets/[^"]+\.js)"', page.text)
        asset = (script.group(1) or script.group(2)) if script else "/favicon.ico"
        responses = {
            "page /login": page,
            f"compiled script {asset.split('/')[-1][:24]}": client.get(asset),
            "unknown page (404)": client.get("/no-such-page-here"),
            "/healthz": client.get("/healthz"),
            "GET /webhooks/whatsapp (bad verify token)": client.get(
                "/webhooks/whatsapp", params={"hub.mode": "subscribe", "hub.verify_token": "x", "hub.challenge": "1"}
            ),
            "POST /webhooks/whatsapp (unsigned)": client.post("/webhooks/whatsapp", content=b"{}"),
            "CSV export without a session": client.get("/exports/campaigns/1.csv"),
            "POST /_upload (no token)": client.post("/_upload", files={"files": ("a.csv", b"phone\n+33612345678\n")}),
            "/_event handshake over HTTP (polling)": client.get(
                "/_event/", params={"EIO": "4", "transport": "polling"}
            ),
        }
    for name, response in responses.items():
        found[name] = (response.status_code, _missing(response.headers), dict(response.headers))
    # The websocket's 101: Granian 2.8 (what `reflex run --env prod` and `hubcast web` serve with) drops the
    # headers an ASGI app puts in `websocket.accept`, so the running server cannot carry them there; the
    # middleware does put them in (checked below, as a server that honours ASGI's accept headers sees them).
    # A 101 has no body a browser could render, sniff or frame, so nothing is exposed by their absence.
    status, ws_headers = _websocket_upgrade(base)
    accept_headers = _headers_added_to_websocket_accept()
    found["/_event websocket accept (ASGI, as the middleware sends it)"] = (
        101,
        _missing(accept_headers),
        accept_headers,
    )
    no_hsts_over_http = all("strict-transport-security" not in {k.lower() for k in h} for _, _, h in found.values())
    https = dataclasses.replace(load_settings(), public_url="https://hubcast.example.com")
    hsts_over_https = build_secure(https).headers.get("Strict-Transport-Security", "")
    bad = {name: (code, missing) for name, (code, missing, _) in found.items() if missing}
    ok = not bad and no_hsts_over_http and "max-age=" in hsts_over_https and status == 101
    record(
        "handlers",
        "security headers (CSP frame-ancestors, XFO, nosniff, Referrer-Policy) on every kind of response",
        ok=ok,
        checked=len(found),
        refused_correctly=len(found) - len(bad),
        allowed_correctly=0,
        statuses={name: code for name, (code, _, _) in found.items()},
        missing=bad,
        hsts_https=hsts_over_https,
    )
    assert not bad, bad
    assert status == 101, ws_headers
    assert accept_headers.get("x-from-the-app") == "kept"  # the app's own accept headers are not lost
    assert no_hsts_over_http
    assert "max-age=63072000" in hsts_over_https and "includeSubDomains" in hsts_over_https
    csp = found["page /login"][2]["content-security-policy"]
    assert "object-src 'none'" in csp and "base-uri 'self'" in csp and "default-src 'self'" in csp
