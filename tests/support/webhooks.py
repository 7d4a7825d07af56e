"""Plugin: fixtures of the webhook route tests (payload builders are in tests/support/webhook_payloads.py)."""

from __future__ import annotations

import pytest


@pytest.fixture()
def no_background(monkeypatch):
    """Keep the background applier out of the way: tests apply in explicit steps."""
    from app import http_api

    monkeypatch.setattr(http_api.applier, "kick", lambda: None)


@pytest.fixture()
def webhook_world(session, no_background):
    """A connected Sandbox channel whose secret signs `webhook_payloads` and a campaign that is sending."""
    from app.models import Campaign, Channel
    from tests.support.webhook_payloads import PNID, SECRET, VERIFY

    channel = Channel(
        name="Sandbox", kind="sandbox", phone_number_id=PNID, app_secret=SECRET, verify_token=VERIFY, status="connected"
    )
    session.add(channel)
    session.commit()
    campaign = Campaign(name="Spring sale", status="sending", channel_id=channel.id)
    session.add(campaign)
    session.commit()
    return {"channel": channel, "campaign": campaign}
