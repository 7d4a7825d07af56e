"""The WhatsApp layer: Cloud API client, error classification, template components, webhook
signature and parsing, and the Sandbox (a local Cloud API simulator, `python -m app.whatsapp.sandbox`).

The sender depends on `Messenger`, not on `CloudApiClient`, so tests and other providers can stand in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Mapping, Protocol, Sequence, runtime_checkable

from app.whatsapp.client import CloudApiClient, SendResult
from app.whatsapp.errors import (
    Classification,
    ErrorKind,
    WhatsAppApiError,
    WhatsAppError,
    classify,
)


@runtime_checkable
class Messenger(Protocol):
    async def send_template(self, to: str, template_name: str, language_code: str,
                            components: Sequence[Mapping[str, Any]] | None = None,
                            biz_opaque_callback_data: str | None = None) -> SendResult:
        """Send one template message; raise WhatsAppApiError (see its `classification`, `ambiguous`)."""
        ...

    def list_templates(self, *, limit: int = 100) -> AsyncIterator[dict]:
        """Every template of the account, as Meta returns them, across all pages."""
        ...

    async def get_phone_number(self) -> dict:
        """The sending number's details; succeeding proves the credentials work."""
        ...

    async def aclose(self) -> None:
        ...


__all__ = [
    "Classification", "CloudApiClient", "ErrorKind", "Messenger", "SendResult", "WhatsAppApiError",
    "WhatsAppError", "classify",
]
