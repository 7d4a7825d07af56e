"""The WhatsApp layer: Cloud API client, error classification, template components, webhook
signature and parsing, and the Sandbox (a local Cloud API simulator, `python -m app.whatsapp.sandbox`).

The sender depends on `Messenger` (`app.whatsapp.messenger`: send a template message, close), not on
`CloudApiClient`, so tests and other providers can stand in; `CloudApiClient` is the production
implementation.
"""

from __future__ import annotations

from app.whatsapp.client import CloudApiClient
from app.whatsapp.errors import (
    Classification,
    ErrorKind,
    WhatsAppApiError,
    WhatsAppError,
    classify,
)
from app.whatsapp.messenger import Messenger, SendResult

__all__ = [
    "Classification",
    "CloudApiClient",
    "ErrorKind",
    "Messenger",
    "SendResult",
    "WhatsAppApiError",
    "WhatsAppError",
    "classify",
]
