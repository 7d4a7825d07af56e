"""`hubcast sandbox` starts the Sandbox with the stored channel's values: whatever they are, the Sandbox's
own parser must read back exactly those values (a generated token may begin with "-")."""

from __future__ import annotations

import pytest

from app.models import Channel
from app.services.channels.sandbox_channel import sandbox_argv
from app.whatsapp.sandbox.config import parse_args


@pytest.mark.parametrize(
    "token, secret",
    [
        ("plain-token_0123456789", "plain-secret"),
        ("-starts-with-a-dash", "--looks-like-an-option"),
        ("-", "-h"),
    ],
)
def test_stored_values_reach_the_sandbox_unchanged(token, secret):
    channel = Channel(
        name="Sandbox",
        kind="sandbox",
        status="connected",
        phone_number_id="100000000000001",
        business_account_id="200000000000001",
        access_token=token,
        app_secret=secret,
        verify_token="v",
        api_base_url="http://127.0.0.1:8123",
        messages_per_second=80,
    )
    config = parse_args(sandbox_argv(channel, public_url="http://localhost:8000/"))
    assert (config.access_token, config.app_secret) == (token, secret)
    assert (config.phone_number_id, config.waba_id) == ("100000000000001", "200000000000001")
    assert (config.host, config.port, config.mps) == ("127.0.0.1", 8123, 80)
    assert config.webhook_url == "http://localhost:8000/webhooks/whatsapp"
