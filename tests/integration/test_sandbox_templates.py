"""A template created for the Sandbox on the Templates page can be sent through the Sandbox: at once
when the Sandbox runs, and after a Sandbox restart (it loads the stored templates at start)."""

from __future__ import annotations

import asyncio

from sqlmodel import select

from app.domain.template_rules import TemplateDraft
from app.models import Channel
from app.services.channels import templates as templates_service
from app.services.demo_seed import seed_demo
from app.whatsapp.client import CloudApiClient
from tests.support.sandbox import free_port, run_sandbox


def _send(channel: Channel, name: str) -> str:
    async def go():
        async with CloudApiClient.from_channel(channel) as client:
            result = await client.send_template(
                "+33612345678", name, "en_US", [{"type": "body", "parameters": [{"type": "text", "text": "Ada"}]}]
            )
            return result.message_id

    return asyncio.run(go())


def _draft(name: str) -> TemplateDraft:
    return TemplateDraft(
        name=name, body="Hello {{1}}, your order is ready.", examples={"body.1": "Ada"}, category="UTILITY"
    )


def test_created_templates_are_sendable_live_and_after_a_restart(session, make_user, tmp_path):
    seed_demo(session=session)
    session.commit()
    admin = make_user("admin")
    channel = session.exec(select(Channel).where(Channel.kind == "sandbox")).one()
    port = free_port()
    channel.api_base_url = f"http://127.0.0.1:{port}"
    session.add(channel)
    session.commit()
    database_url = str(session.get_bind().url.render_as_string(hide_password=False))

    # 1. Created while no Sandbox runs: stored, and loaded by the Sandbox when it starts.
    templates_service.create_sandbox_template(
        session=session, actor=admin, channel_id=channel.id, draft=_draft("order_ready_offline")
    )
    session.commit()
    with run_sandbox(tmp_path / "sandbox", port=port, database_url=database_url, timeout=60):
        assert _send(channel, "order_ready_offline").startswith("wamid.")
        # 2. Created while the Sandbox runs: registered at once.
        created = templates_service.create_sandbox_template(
            session=session, actor=admin, channel_id=channel.id, draft=_draft("order_ready_live")
        )
        session.commit()
        assert created.external_id
        assert _send(channel, "order_ready_live").startswith("wamid.")
