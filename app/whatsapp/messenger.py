"""What a sender needs from WhatsApp: the `Messenger` protocol and the `SendResult` it answers.

The campaign sender (`app.services.sending`) is written against this protocol only, never against
`CloudApiClient`, so a test or another provider can stand in for the Cloud API. `CloudApiClient`
(httpx over the httpx-aiohttp transport, `app.whatsapp.client`) is the production implementation
and declares it by subclassing. Template listing and the connection test are the channel pages'
business and use the client directly; they are not part of what a sender needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class SendResult:
    message_id: str  # the wamid; status webhooks refer to it
    wa_id: str = ""
    message_status: str = ""  # "accepted" (marketing), "held_for_quality_assessment", or absent


@runtime_checkable
class Messenger(Protocol):
    """Sends template messages for one channel; owns whatever connections it needs until `aclose`."""

    async def send_template(
        self,
        to: str,
        template_name: str,
        language_code: str,
        components: Sequence[Mapping[str, Any]] | None = None,
        biz_opaque_callback_data: str | None = None,
    ) -> SendResult:
        """Send one template message and answer its wamid, or raise `WhatsAppApiError` (see its
        `classification`; `ambiguous` is True when the message may have left and must not be resent)."""
        ...

    async def aclose(self) -> None:
        """Release the connections; the messenger is not used afterwards."""
        ...
