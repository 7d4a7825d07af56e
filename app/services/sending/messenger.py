"""The one place the sending engine gets a `Messenger` for a channel.

Everything in `app.services.sending` is written against `app.whatsapp.Messenger`; only this factory
knows that production sends go through `CloudApiClient` (httpx over the httpx-aiohttp transport, with
aiohttp directly on the send path). Callers that want another messenger (a test, another provider)
pass one to `BatchRunner` / `run_batch` instead.
"""

from __future__ import annotations

from typing import Any

from app.whatsapp.client import CloudApiClient
from app.whatsapp.messenger import Messenger


def messenger_for(channel: Any, *, timeout: float, max_connections: int) -> Messenger:
    """A messenger sending from `channel` (anything shaped like `app.models.Channel`), pooling up to
    `max_connections` connections; the caller closes it (`aclose`)."""
    return CloudApiClient.from_channel(channel, timeout=timeout, max_connections=max_connections)
