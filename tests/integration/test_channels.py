"""Channels: connect / edit / disconnect with validation and audit, the connection test against a real
Sandbox process over HTTP, role refusals, and secrets that never reach the browser (through Reflex's
real event path, in-process: tests/support/reflex_client.py)."""

from __future__ import annotations

import pytest
from sqlmodel import select

from app.domain import permissions as perm
from app.models import AuditLog, Campaign, Channel
from app.services.accounts import auth
from app.services.channels import channels as channels_service
from app.services.channels.channels import ChannelError
from state.channels import VERIFY_TOKEN_INPUT, ChannelsState
from tests.support.reflex_client import event_name
from tests.support.sandbox import ACCOUNT_PNID as PNID
from tests.support.sandbox import ACCOUNT_SECRET as SECRET
from tests.support.sandbox import ACCOUNT_TOKEN as TOKEN
from tests.support.sandbox import ACCOUNT_WABA as WABA
from tests.support.sandbox import run_account_sandbox as running_sandbox

FORM = {
    "name": "Main shop",
    "phone_number_id": "106540352242922",
    "business_account_id": "102290129340398",
    "access_token": "EAAG-real-looking-token-0001",
    "app_secret": "0123456789abcdef0123456789abcdef",
    "verify_token": "",
    "api_base_url": "",
    "api_version": "",
    "messages_per_second": "",
}


@pytest.fixture(autouse=True)
def _local_api_hosts_allowed(monkeypatch):
    # These tests run Sandboxes on free local ports; production allows Meta's host and the Sandbox URL only.
    monkeypatch.setenv("HUBCAST_CHANNEL_API_HOSTS", "http://127.0.0.1:*")


@pytest.fixture(scope="module")
def sandbox_url(tmp_path_factory):
    with running_sandbox(tmp_path_factory.mktemp("sandbox")) as sandbox:
        yield sandbox.url


def _channels(session) -> list[Channel]:
    session.expire_all()
    return list(session.exec(select(Channel).order_by(Channel.id)).all())


def _audit(session, action: str) -> list[AuditLog]:
    return list(session.exec(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)).all())


def _connect(session, actor, **changes):
    result = channels_service.connect_channel(session=session, actor=actor, form={**FORM, **changes})
    session.commit()
    return result


# --- connect ---------------------------------------------------------------------------------


def test_admin_connects_a_number_with_defaults_and_a_generated_verify_token(session, make_user):
    admin = make_user(perm.ADMIN)
    result = _connect(session, admin)

    channel = _channels(session)[0]
    assert (channel.name, channel.kind, channel.phone_number_id, channel.business_account_id) == (
        "Main shop",
        "whatsapp_cloud",
        "106540352242922",
        "102290129340398",
    )
    assert (channel.api_base_url, channel.api_version, channel.messages_per_second) == (
        "https://graph.facebook.com",
        "v23.0",
        80,
    )
    assert channel.status == "disconnected" and channel.last_error == "Not tested yet."
    assert channel.access_token == FORM["access_token"] and channel.app_secret == FORM["app_secret"]
    assert result.generated_verify_token and len(result.generated_verify_token) >= 24
    assert channel.verify_token == result.generated_verify_token
    (entry,) = _audit(session, "channel.connect")
    assert entry.actor_id == admin.id and entry.detail["verify_token_generated"] is True
    for secret in (FORM["access_token"], FORM["app_secret"], result.generated_verify_token):
        assert secret not in repr(entry.detail)
    assert channels_service.webhook_url("https://hub.example.com/") == "https://hub.example.com/webhooks/whatsapp"


def test_a_verify_token_given_is_kept_and_not_generated(session, make_user):
    result = _connect(session, make_user(perm.ADMIN), verify_token="my-own-verify-token")
    assert result.generated_verify_token is None
    assert _channels(session)[0].verify_token == "my-own-verify-token"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": ""}, "Enter a name for the channel"),
        ({"phone_number_id": "10654-ABC"}, "The phone number ID must contain digits only."),
        ({"business_account_id": ""}, "Enter the WhatsApp Business Account ID"),
        ({"access_token": ""}, "Enter the access token"),
        ({"app_secret": ""}, "Enter the app secret"),
        ({"access_token": "two words"}, "The access token must be a single line without spaces"),
        ({"messages_per_second": "0"}, "Messages per second must be a whole number from 1 to 1000"),
        ({"messages_per_second": "1001"}, "Messages per second must be a whole number from 1 to 1000"),
        ({"messages_per_second": "fast"}, "Messages per second must be a whole number from 1 to 1000"),
        ({"api_base_url": "http://graph.example.com"}, "must use https (plain http is only allowed for localhost)"),
        ({"api_base_url": "ftp://graph.facebook.com"}, "The API base URL must look like https://graph.facebook.com."),
        ({"api_base_url": "https://user:pw@graph.facebook.com"}, "may not contain credentials"),
        ({"api_version": "23"}, "The API version must look like v23.0."),
        ({"display_name": "x" * 121}, "The display name is too long (at most 120 characters)."),
        ({"display_name": "Shop\u0000"}, "The display name may not contain control characters."),
        ({"display_name": ["Shop"]}, "The display name must be text."),
    ],
)
def test_bad_input_is_refused_with_a_specific_message_and_nothing_written(session, make_user, changes, message):
    admin = make_user(perm.ADMIN)
    with pytest.raises(ChannelError) as info:
        _connect(session, admin, **changes)
    session.rollback()
    assert message in str(info.value)
    assert _channels(session) == [] and _audit(session, "channel.connect") == []


def test_localhost_http_is_allowed_for_a_local_api_and_names_are_unique(session, make_user):
    admin = make_user(perm.ADMIN)
    _connect(session, admin, api_base_url="http://127.0.0.1:9999/", messages_per_second="1000")
    assert _channels(session)[0].api_base_url == "http://127.0.0.1:9999"
    with pytest.raises(ChannelError, match="A channel named main shop already exists"):
        _connect(session, admin, name="main shop", phone_number_id="999")
    with pytest.raises(ChannelError, match="already connected"):
        _connect(session, admin, name="Other")
    session.rollback()
    assert len(_channels(session)) == 1


# --- edit, disconnect ------------------------------------------------------------------------


def test_edit_keeps_secrets_left_empty_and_replaces_the_ones_given(session, make_user):
    admin = make_user(perm.ADMIN)
    channel = _connect(session, admin, verify_token="first-verify").channel
    form = channels_service.channel_for_edit(session=session, actor=admin, channel_id=channel.id)
    assert form["access_token_set"] == "yes" and "access_token" not in form
    assert all(secret not in repr(form) for secret in (FORM["access_token"], FORM["app_secret"], "first-verify"))

    saved = channels_service.update_channel(
        session=session,
        actor=admin,
        channel_id=channel.id,
        form={**form, "messages_per_second": "200", "access_token": "", "app_secret": "", "verify_token": ""},
    )
    session.commit()
    assert saved.changed == ("messages_per_second",) and not saved.connection_changed
    stored = _channels(session)[0]
    assert (stored.access_token, stored.app_secret, stored.verify_token, stored.messages_per_second) == (
        FORM["access_token"],
        FORM["app_secret"],
        "first-verify",
        200,
    )

    saved = channels_service.update_channel(
        session=session, actor=admin, channel_id=channel.id, form={**form, "access_token": "EAAG-new-token"}
    )
    session.commit()
    assert saved.connection_changed and _channels(session)[0].access_token == "EAAG-new-token"
    entries = _audit(session, "channel.update")
    assert [e.detail["changed"] for e in entries] == [["messages_per_second"], ["access_token", "messages_per_second"]]
    assert all("EAAG-new-token" not in repr(e.detail) for e in entries)

    with pytest.raises(ChannelError, match="digits only"):
        channels_service.update_channel(
            session=session, actor=admin, channel_id=channel.id, form={**form, "phone_number_id": "abc"}
        )
    session.rollback()
    assert _channels(session)[0].phone_number_id == FORM["phone_number_id"]


def test_the_display_name_is_trimmed_saved_audited_and_kept_when_absent(session, make_user):
    admin = make_user(perm.ADMIN)
    channel = _connect(session, admin, display_name="  Main   Shop  ").channel
    assert _channels(session)[0].display_name == "Main Shop"  # trimmed, inner spaces collapsed
    assert _audit(session, "channel.connect")[-1].detail["display_name"] == "Main Shop"
    form = channels_service.channel_for_edit(session=session, actor=admin, channel_id=channel.id)
    assert form["display_name"] == "Main Shop"

    saved = channels_service.update_channel(
        session=session, actor=admin, channel_id=channel.id, form={**form, "display_name": "x" * 120}
    )
    session.commit()
    assert saved.changed == ("display_name",) and not saved.connection_changed  # no connection test for a name
    assert _channels(session)[0].display_name == "x" * 120
    assert _audit(session, "channel.update")[-1].detail == {"name": "Main shop", "changed": ["display_name"]}

    # A form without the field (an older client) keeps it; an empty one clears it for the next test to fill.
    without = {k: v for k, v in form.items() if k != "display_name"}
    assert (
        channels_service.update_channel(session=session, actor=admin, channel_id=channel.id, form=without).changed == ()
    )
    channels_service.update_channel(
        session=session, actor=admin, channel_id=channel.id, form={**form, "display_name": " "}
    )
    session.commit()
    assert _channels(session)[0].display_name == ""

    with pytest.raises(ChannelError, match="at most 120"):
        channels_service.update_channel(
            session=session, actor=admin, channel_id=channel.id, form={**form, "display_name": "y" * 121}
        )
    session.rollback()
    assert _channels(session)[0].display_name == ""


def test_disconnect_stops_the_channel_and_says_which_campaigns_used_it(session, make_user):
    admin = make_user(perm.ADMIN)
    channel = _connect(session, admin).channel
    channel.status = "connected"
    session.add_all(
        [
            channel,
            Campaign(name="Weekly", status="scheduled", channel_id=channel.id),
            Campaign(name="Old", status="sent", channel_id=channel.id),
        ]
    )
    session.commit()

    result = channels_service.disconnect_channel(session=session, actor=admin, channel_id=channel.id)
    session.commit()

    assert result.active_campaigns == 1
    stored = _channels(session)[0]
    assert stored.status == "disconnected" and not channels_service.is_usable(stored)
    assert stored.access_token == FORM["access_token"]  # kept: a successful test reconnects it
    (entry,) = _audit(session, "channel.disconnect")
    assert entry.actor_id == admin.id and entry.detail == {"name": "Main shop", "active_campaigns": 1}
    with pytest.raises(ChannelError, match="already disconnected"):
        channels_service.disconnect_channel(session=session, actor=admin, channel_id=channel.id)


def test_the_sandbox_cannot_be_edited_or_disconnected(session, make_user):
    admin = make_user(perm.ADMIN)
    sandbox = Channel(name="Sandbox", kind="sandbox", status="connected", access_token="x", app_secret="y")
    session.add(sandbox)
    session.commit()
    with pytest.raises(ChannelError, match="cannot be disconnected"):
        channels_service.disconnect_channel(session=session, actor=admin, channel_id=sandbox.id)
    with pytest.raises(ChannelError, match="cannot be edited"):
        channels_service.update_channel(session=session, actor=admin, channel_id=sandbox.id, form=FORM)
    with pytest.raises(ChannelError, match="cannot be edited"):
        channels_service.channel_for_edit(session=session, actor=admin, channel_id=sandbox.id)
    assert _channels(session)[0].status == "connected"


@pytest.mark.parametrize("role", [perm.ADVANCED, perm.BASIC])
def test_only_admins_manage_channels(session, make_user, role):
    admin, user = make_user(perm.ADMIN), make_user(role)
    channel = _connect(session, admin).channel
    before = [(c.name, c.status, c.access_token, c.display_name) for c in _channels(session)]
    calls = [
        lambda: channels_service.connect_channel(session=session, actor=user, form={**FORM, "name": "Mine"}),
        lambda: channels_service.update_channel(
            session=session, actor=user, channel_id=channel.id, form={**FORM, "access_token": "stolen"}
        ),
        lambda: channels_service.update_channel(
            session=session, actor=user, channel_id=channel.id, form={**FORM, "display_name": "Not yours"}
        ),
        lambda: channels_service.disconnect_channel(session=session, actor=user, channel_id=channel.id),
        lambda: channels_service.test_connection(session=session, actor=user, channel_id=channel.id),
        lambda: channels_service.channel_for_edit(session=session, actor=user, channel_id=channel.id),
    ]
    for call in calls:
        with pytest.raises(perm.PermissionDenied):
            call()
    session.rollback()
    assert [(c.name, c.status, c.access_token, c.display_name) for c in _channels(session)] == before


# --- connection test over HTTP ---------------------------------------------------------------


def _sandbox_backed(session, admin, sandbox_url, **changes) -> Channel:
    values = {
        "phone_number_id": PNID,
        "business_account_id": WABA,
        "access_token": TOKEN,
        "app_secret": SECRET,
        "api_base_url": sandbox_url,
        **changes,
    }
    return _connect(session, admin, **values).channel


def test_connection_test_against_the_sandbox_connects_the_channel(session, make_user, sandbox_url):
    admin = make_user(perm.ADMIN)
    channel = _sandbox_backed(session, admin, sandbox_url)

    result = channels_service.test_connection(session=session, actor=admin, channel_id=channel.id)
    session.commit()

    assert result.ok and result.status == "connected" and result.message == "Hubcast Sandbox"
    stored = _channels(session)[0]
    assert stored.status == "connected" and stored.last_error == "" and stored.last_checked_at is not None
    assert stored.display_phone_number == "+1 555 010 0000"
    assert _audit(session, "channel.test")[-1].outcome == "ok"
    assert stored.display_name == "Hubcast Sandbox"  # left empty: filled with Meta's verified name
    assert _audit(session, "channel.test")[-1].detail["display_name_filled"] == "Hubcast Sandbox"


def test_the_connection_test_never_overwrites_a_display_name_the_admin_typed(session, make_user, sandbox_url):
    admin = make_user(perm.ADMIN)
    channel = _sandbox_backed(session, admin, sandbox_url, display_name="Corner Bakery")

    result = channels_service.test_connection(session=session, actor=admin, channel_id=channel.id)
    session.commit()

    assert result.ok
    assert _channels(session)[0].display_name == "Corner Bakery"
    assert "display_name_filled" not in _audit(session, "channel.test")[-1].detail


def test_a_wrong_token_stores_metas_error_190(session, make_user, sandbox_url):
    admin = make_user(perm.ADMIN)
    channel = _sandbox_backed(session, admin, sandbox_url)
    channel.access_token, channel.status = "not-the-token", "connected"
    session.add(channel)
    session.commit()

    result = channels_service.test_connection(session=session, actor=admin, channel_id=channel.id)
    session.commit()

    assert not result.ok and result.status == "error"
    assert result.message.startswith("#190 Invalid OAuth access token")
    stored = _channels(session)[0]
    # Admins read Meta's words (the detail); every role reads Hubcast's summary (issue 13 item 5).
    assert stored.status == "error" and stored.last_error_detail == result.message
    assert stored.last_error.startswith("#190 Access token invalid or expired")
    assert "not-the-token" not in stored.last_error
    entry = _audit(session, "channel.test")[-1]
    assert entry.outcome == "error" and "#190" in entry.detail["error"]


def test_wrong_ids_and_an_unreachable_api_are_reported(session, make_user, sandbox_url):
    admin = make_user(perm.ADMIN)
    wrong_number = _sandbox_backed(session, admin, sandbox_url, phone_number_id="123")
    result = channels_service.test_connection(session=session, actor=admin, channel_id=wrong_number.id)
    assert not result.ok and "#100" in result.message and "123" in result.message

    wrong_waba = _sandbox_backed(session, admin, sandbox_url, name="Wrong WABA", business_account_id="999")
    result = channels_service.test_connection(session=session, actor=admin, channel_id=wrong_waba.id)
    assert not result.ok and "WhatsApp Business Account ID 999 does not" in result.message

    nowhere = _connect(session, admin, name="Nowhere", phone_number_id="555", api_base_url="http://127.0.0.1:9").channel
    result = channels_service.test_connection(session=session, actor=admin, channel_id=nowhere.id)
    session.commit()
    assert not result.ok and result.message.startswith("Connection error")


# --- secrets never reach the browser ---------------------------------------------------------


def test_channel_secrets_never_reach_the_browser(session, make_user, redis_client, reflex_backend, sandbox_url):
    """Connect, edit, test and reload through Reflex's real event path: no var of any state, no delta
    and no frontend event carries a secret, except the generated verify token, written once into its
    input by a one-off set_value event."""
    admin = make_user(perm.ADMIN)
    cookie = auth.login(
        session=session, redis_client=redis_client, email=admin.email, password="correct horse battery"
    ).session_secret
    given = {
        **FORM,
        "phone_number_id": PNID,
        "business_account_id": WABA,
        "access_token": TOKEN,
        "app_secret": SECRET,
        "verify_token": "",
        "api_base_url": sandbox_url,
        "name": "Via the UI",
    }
    new_token = "EAAG-replaced-token-42"
    name = lambda handler: event_name(ChannelsState, handler)

    async def scenario(new_client):
        client = new_client()
        await client.connect(cookie, path="/channels")
        outcomes, snapshots = [], []
        for handler, payload in [("load", {}), ("open_connect", {}), ("save_channel", {"form": given})]:
            outcomes.append(await client.send(name(handler), payload, path="/channels"))
            snapshots.append(await client.vars_snapshot())
        channel_id = (await client.substate(ChannelsState)).rows[-1]["id"]
        for handler, payload in [
            ("open_edit", {"channel_id": channel_id}),
            ("save_channel", {"form": {**given, "access_token": new_token}}),
            ("check_connection", {"channel_id": channel_id}),
            ("load", {}),
            ("hide_setup", {}),
        ]:
            outcomes.append(await client.send(name(handler), payload, path="/channels"))
            snapshots.append(await client.vars_snapshot())
        sub = await client.substate(ChannelsState)
        await client.close()
        return outcomes, snapshots, sub

    outcomes, snapshots, sub = reflex_backend(scenario)

    stored = next(c for c in _channels(session) if c.name == "Via the UI")
    generated = stored.verify_token
    assert "Via the UI is connected (Hubcast Sandbox)" in outcomes[2].texts()  # connect, then tested
    # The edit replaced the token with one the Sandbox refuses: re-tested at once, and again by hand.
    assert stored.access_token == new_token and stored.status == "error" and "#190" in stored.last_error
    assert "connection failed. #190" in outcomes[4].texts() and "#190" in outcomes[5].texts()
    assert sub.rows[-1]["name"] == "Via the UI" and sub.rows[-1]["token_set"] == "yes"
    assert all(not o.exceptions for o in outcomes), [o.exceptions for o in outcomes]
    secrets = (TOKEN, SECRET, new_token, generated)
    for snapshot in snapshots:
        assert not any(s in repr(snapshot) for s in secrets), "a secret is in a state var"
    for outcome in outcomes:
        assert not any(s in repr(d) for d in outcome.deltas for s in secrets), "a secret is in a delta"
    shown = [e for o in outcomes for e in o.frontend_events if any(s in repr(e.payload) for s in secrets)]
    assert len(shown) == 1 and shown[0].name == "_set_value"
    assert VERIFY_TOKEN_INPUT.replace("-", "_") in repr(shown[0].payload) and generated in repr(shown[0].payload)
    assert TOKEN not in repr(shown[0].payload) and SECRET not in repr(shown[0].payload)
