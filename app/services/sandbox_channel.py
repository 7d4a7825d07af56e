"""Launch arguments that make the Sandbox server match the Sandbox channel stored in the database.

The channel row holds the ids and secrets the app will use to call the Sandbox and to verify its
webhooks; the Sandbox process must be started with the same ones, and post to the app's webhook URL.
"""

from __future__ import annotations

from urllib.parse import urlparse

from sqlmodel import Session, select

from app.models import Channel


def sandbox_channel(*, session: Session) -> Channel | None:
    return session.exec(select(Channel).where(Channel.kind == "sandbox").order_by(Channel.id)).first()


def sandbox_argv(channel: Channel, *, public_url: str) -> list[str]:
    api = urlparse(channel.api_base_url)
    return [
        "--host", api.hostname or "127.0.0.1",
        "--port", str(api.port or 8001),
        "--access-token", channel.access_token,
        "--app-secret", channel.app_secret,
        "--phone-number-id", channel.phone_number_id,
        "--waba-id", channel.business_account_id,
        "--mps", str(channel.messages_per_second),
        "--webhook-url", f"{public_url.rstrip('/')}/webhooks/whatsapp",
    ]
