"""A template created for the Sandbox on the Templates page can be sent through the Sandbox: at once
when the Sandbox runs, and after a Sandbox restart (it loads the stored templates at start)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import httpx
import pytest
from sqlmodel import select

from app.domain.template_rules import TemplateDraft
from app.models import Channel
from app.redis_conn import free_port
from app.services import templates as templates_service
from app.services.demo_seed import seed_demo
from app.settings import PROJECT_ROOT
from app.whatsapp.client import CloudApiClient


def _start_sandbox(database_url: str, tmp_path, port: int) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": database_url, "HUBCAST_DATA_DIR": str(tmp_path / "data")}
    log = open(tmp_path / "sandbox.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "sandbox", "--port", str(port)], env=env,
                            cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/_sandbox/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    pytest.fail("the Sandbox did not start within 60 s: " + (tmp_path / "sandbox.log").read_text()[-1500:])


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(timeout=15)


def _send(channel: Channel, name: str) -> str:
    async def go():
        async with CloudApiClient.from_channel(channel) as client:
            result = await client.send_template("+33612345678", name, "en_US", [
                {"type": "body", "parameters": [{"type": "text", "text": "Ada"}]}])
            return result.message_id

    return asyncio.run(go())


def _draft(name: str) -> TemplateDraft:
    return TemplateDraft(name=name, body="Hello {{1}}, your order is ready.", examples={"body.1": "Ada"},
                         category="UTILITY")


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
    templates_service.create_sandbox_template(session=session, actor=admin, channel_id=channel.id,
                                              draft=_draft("order_ready_offline"))
    session.commit()
    proc = _start_sandbox(database_url, tmp_path, port)
    try:
        assert _send(channel, "order_ready_offline").startswith("wamid.")
        # 2. Created while the Sandbox runs: registered at once.
        created = templates_service.create_sandbox_template(session=session, actor=admin, channel_id=channel.id,
                                                            draft=_draft("order_ready_live"))
        session.commit()
        assert created.external_id
        assert _send(channel, "order_ready_live").startswith("wamid.")
    finally:
        _stop(proc)
