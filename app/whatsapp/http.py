"""One place that builds the pooled async HTTP client used to talk to Meta (and by the Sandbox).

httpx's default transport collapses at a few hundred requests in flight (pool bookkeeping eats the
CPU, encode/httpx#3215); `httpx-aiohttp` keeps the httpx API over aiohttp's connector and reached
~1,000 req/s from one process here. The default transport is only a fallback if that import fails.
"""

from __future__ import annotations

import logging

import httpx

log = logging.getLogger(__name__)

try:  # pragma: no branch
    from httpx_aiohttp import AiohttpTransport
except ImportError:  # pragma: no cover - the dependency is declared; this only keeps odd installs working
    AiohttpTransport = None  # type: ignore[assignment,misc]

# Shorter than common server keep-alive timeouts, so we rarely write a POST onto a connection the
# server is closing (that POST would end "ambiguous": sent or not, nobody knows).
KEEPALIVE_EXPIRY_S = 4.0


def default_transport(max_connections: int) -> httpx.AsyncBaseTransport:
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections, keepalive_expiry=KEEPALIVE_EXPIRY_S
    )
    if AiohttpTransport is not None:
        return AiohttpTransport(limits=limits, trust_env=True)
    log.warning("httpx-aiohttp is not installed: falling back to httpx's default transport (slow at high concurrency)")
    return httpx.AsyncHTTPTransport(limits=limits)


def build_async_client(
    *,
    timeout: float,
    max_connections: int = 128,
    headers: dict[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    base_url: str = "",
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        headers=headers or {},
        timeout=httpx.Timeout(timeout),
        transport=transport or default_transport(max_connections),
        follow_redirects=False,
    )
