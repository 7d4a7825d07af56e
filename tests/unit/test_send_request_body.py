"""The campaign sender's request body, encoded from a per-template head (CloudApiClient._send_body), is the
same JSON object Meta documents and the httpx path sends, whatever the values hold."""

from __future__ import annotations

import asyncio
import json

import pytest

from app.whatsapp.client import CloudApiClient, template_message

BODY = [{"type": "body", "parameters": [{"type": "text", "text": 'Zoë "the boss" \\ 🎉'}]}]


@pytest.mark.parametrize(
    ("to", "name", "language", "components", "callback"),
    [
        ("+33612345678", "order_update", "en_US", BODY, "hc:1:2"),
        ("+33612345678", "hello_world", "en_US", None, None),
        ("+33612345678", "hello_world", "pt_BR", [], "hc:7:9"),
        ('+1"}', 'we"ird\n', "fr", BODY, 'x"}{'),
    ],
)
def test_the_encoded_body_is_the_documented_object(to, name, language, components, callback):
    client = CloudApiClient("http://127.0.0.1:1", "v23.0", "PNID", "WABA", "token")
    try:
        for _ in range(2):  # the second time from the cached head
            raw = client._send_body(to, name, language, components, callback)
            assert json.loads(raw) == template_message(to, name, language, components, callback)
    finally:
        asyncio.run(client.aclose())
