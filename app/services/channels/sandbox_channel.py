"""Launch arguments that make the Sandbox server match the Sandbox channel stored in the database.

The channel row holds the ids and secrets the app will use to call the Sandbox and to verify its
webhooks; the Sandbox process must be started with the same ones, and post to the app's webhook URL.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlparse

from sqlmodel import Session, select

from app.models import Channel, Template
from app.whatsapp.sandbox.catalog import load_templates


def sandbox_channel(*, session: Session) -> Channel | None:
    return session.exec(select(Channel).where(Channel.kind == "sandbox").order_by(Channel.id)).first()


def sandbox_argv(channel: Channel, *, public_url: str) -> list[str]:
    api = urlparse(channel.api_base_url)
    return [
        "--host",
        api.hostname or "127.0.0.1",
        "--port",
        str(api.port or 8001),
        # `--name=value`: a stored value may begin with "-" (a generated token does one time in 64), which
        # argparse would take for an option and refuse, so the Sandbox would not start.
        f"--access-token={channel.access_token}",
        f"--app-secret={channel.app_secret}",
        f"--phone-number-id={channel.phone_number_id}",
        f"--waba-id={channel.business_account_id}",
        "--mps",
        str(channel.messages_per_second),
        "--webhook-url",
        f"{public_url.rstrip('/')}/webhooks/whatsapp",
    ]


def write_sandbox_catalogue(*, session: Session, channel: Channel, path: Path) -> Path:
    """The Sandbox's template catalogue: its built-in one plus every template Hubcast stores for the
    Sandbox channel (those created on the Templates page included), so they survive a Sandbox restart."""
    templates = load_templates()
    known = {(t["name"], t["language"]) for t in templates}
    for row in session.exec(select(Template).where(Template.channel_id == channel.id)).all():
        if (row.name, row.language) not in known:
            templates.append(
                {
                    "id": row.external_id or None,
                    "name": row.name,
                    "language": row.language,
                    "status": row.status,
                    "category": row.category,
                    "parameter_format": row.parameter_format,
                    "components": row.components,
                }
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(templates), encoding="utf-8")
    return path
