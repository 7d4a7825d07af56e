""" "Send a test message" (issue 5, SPEC S10), the trial send: the real sending path to one number, never counted.

Real database, real Redis, the Sandbox over HTTP (its own log is the witness of what was POSTed), and
for statuses a real web server receiving the Sandbox's signed webhooks."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest
from sqlmodel import Session, select

from app import models
from app.db import get_engine
from app.domain.permissions import NotAuthenticated, PermissionDenied
from app.models import AuditLog, Campaign, CampaignRecipient, ContactIdentity, Template, User
from app.services.audiences import uploads
from app.services.audiences.csv_reader import check_csv
from app.services.campaigns import drafts as svc
from app.services.campaigns import trial_send as ts
from app.services.campaigns.trial_send import TrialSendError, send_trial_message
from app.services.inbound.webhook_ingest import recipient_id_from_callback
from app.settings import PROJECT_ROOT
from tests.support.factories import MAPPING, campaign_row, make_campaign, make_channel, make_list, make_template, number
from tests.support.processes import stop_process
from tests.support.sandbox import free_port, run_sandbox
from tests.support.wait import wait_until

COUNTERS = (
    "status",
    "total_recipients",
    "queued_count",
    "sent_count",
    "delivered_count",
    "read_count",
    "failed_count",
    "unknown_count",
)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    with run_sandbox(tmp_path_factory.mktemp("sandbox"), mps=1000) as sb:
        yield sb


@pytest.fixture()
def sb(sandbox):
    sandbox.admin("POST", "/_sandbox/reset")
    sandbox.log_file.write_text("")
    return sandbox


def _world(session, make_user, url: str, **campaign_kw) -> dict:
    user = make_user("basic")
    channel = make_channel(session, url)
    template = make_template(session, channel)
    clist = make_list(session, [number(i) for i in range(3)])
    campaign = make_campaign(session, channel, template, clist, **campaign_kw)
    return {
        "user": user,
        "channel": channel,
        "template": template,
        "list": clist,
        "campaign": campaign,
        "session": session,
    }


@pytest.fixture()
def env(session, redis_client, make_user, sb):
    return _world(session, make_user, sb.url)


def stored_trials(campaign_id: int | None = None) -> list:
    with Session(get_engine()) as s:
        query = select(models.TrialSend).order_by(models.TrialSend.id)
        if campaign_id is not None:
            query = query.where(models.TrialSend.campaign_id == campaign_id)
        return list(s.exec(query).all())


def counters(campaign_id: int) -> tuple:
    c = campaign_row(campaign_id)
    return tuple(getattr(c, k) for k in COUNTERS)


def recipient_rows() -> int:
    with Session(get_engine()) as s:
        return len(s.exec(select(CampaignRecipient)).all())


def send(env, to, **kw):
    return send_trial_message(session=env["session"], actor=env["user"], campaign_id=env["campaign"].id, to=to, **kw)


# --- success ---------------------------------------------------------------------------------------


def test_a_test_goes_out_once_with_the_first_recipients_values_and_is_not_counted(env, sb):
    cid = env["campaign"].id
    before = counters(cid)
    result = send(env, "+33 6 12 34 56 78")

    assert result.ok and result.status == "sent" and result.to == "+33612345678"
    assert result.message == (
        f"Test sent to +33612345678 with the values of the first recipient ({number(0)}); "
        "it is not counted in the campaign."
    )
    log = sb.log()
    assert log["total"] == 1 and log["per_recipient"] == {"+33612345678": 1}
    [entry] = sb.entries()
    assert entry["to"] == "+33612345678" and entry["template"] == "order_update" and entry["language"] == "en_US"
    # the parameters the campaign's mapping renders for its first recipient (Ana0), the same text a campaign sends
    assert entry["text"].startswith("Hi Ana0, your order #48213 has shipped and should arrive by Friday.")
    # marked as a test, and never readable as a campaign recipient id by the webhook matcher
    assert entry["biz_opaque_callback_data"] == f"hubcast-test-{result.trial_send_id}"
    assert recipient_id_from_callback(entry["biz_opaque_callback_data"]) is None

    [row] = stored_trials(cid)
    assert (row.to, row.status, row.message_id, row.user_id, row.error) == (
        "+33612345678",
        "sent",
        entry["wamid"],
        env["user"].id,
        "",
    )
    assert counters(cid) == before and recipient_rows() == 0  # the campaign is untouched
    assert campaign_row(cid).status == "draft"
    with Session(get_engine()) as s:
        audit = s.exec(select(AuditLog).where(AuditLog.action == "campaign.test_send")).one()
        assert audit.detail == {"to": "+33612345678", "test_send_id": row.id} and audit.actor_id == env["user"].id


def test_a_number_of_the_audience_gets_its_own_values(env, sb):
    result = send(env, number(2))
    assert result.ok and "this number's values from the audience" in result.message
    [entry] = sb.entries()
    assert entry["to"] == number(2) and entry["text"].startswith("Hi Ana2, your order #48213")


def test_a_test_waits_for_the_channels_shared_rate_like_a_campaign_job(env, sb, redis_client):
    send(env, "+33612345678")
    # the reservation went through the channel's GCRA key, the one every campaign job on that channel uses
    assert redis_client.exists(f"hubcast:rate:{env['channel'].id}:tat") == 1


# --- refusals: nothing sent, nothing stored -----------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("0612345678", "country code missing"),
        ("+33 12", "too short"),
        ("+33 6 12 34 56 78 99 99 99", "too long"),
        ("call me", "not a valid phone number"),
        ("+999 612345678", "unknown country code"),
        ("", "Enter the phone number"),
        ("   ", "Enter the phone number"),
    ],
)
def test_a_bad_number_is_refused_and_nothing_is_sent_or_stored(env, sb, typed, reason):
    with pytest.raises(TrialSendError) as err:
        send(env, typed)
    assert reason in str(err.value) and "+33 6 12 34 56 78" in str(err.value)
    assert sb.log()["total"] == 0 and stored_trials() == []


def test_garbage_arguments_are_refused_cleanly(env, sb):
    for bad in (None, 33612345678, ["+33612345678"], {"to": "+33612345678"}, "+" + "3" * 60):
        with pytest.raises(TrialSendError):
            send(env, bad)
    for cid in (None, "", "abc", 10_000):
        with pytest.raises(TrialSendError):
            send_trial_message(session=env["session"], actor=env["user"], campaign_id=cid, to="+33612345678")
    assert sb.log()["total"] == 0 and stored_trials() == []


def test_an_incomplete_mapping_is_refused(session, redis_client, make_user, sb):
    env = _world(session, make_user, sb.url, mapping={k: v for k, v in MAPPING.items() if k != "body.3"})
    with pytest.raises(TrialSendError) as err:
        send(env, "+33612345678")
    assert "Say where the value of {{3}} comes from." in str(err.value)
    assert sb.log()["total"] == 0 and stored_trials() == []


def test_a_template_no_longer_approved_is_refused(env, sb):
    session = env["session"]
    template = session.get(Template, env["template"].id)
    template.status = "PAUSED"
    session.add(template)
    session.commit()
    with pytest.raises(TrialSendError) as err:
        send(env, "+33612345678")
    assert "is not approved by WhatsApp (status PAUSED)" in str(err.value)
    assert sb.log()["total"] == 0 and stored_trials() == []


def test_a_first_recipient_without_a_value_and_no_fallback_is_refused(session, redis_client, make_user, sb):
    user = make_user("basic")
    channel = make_channel(session, sb.url)
    template = make_template(session, channel)
    clist = make_list(session, [number(i) for i in range(2)], first_name=lambda i: "" if i == 0 else "Bo")
    env = {"user": user, "session": session, "campaign": make_campaign(session, channel, template, clist)}
    with pytest.raises(TrialSendError) as err:
        send(env, "+33612345678")
    assert f"The first recipient ({number(0)}) has no value for {{{{1}}}}" in str(err.value)
    assert "add a fallback" in str(err.value)
    assert sb.log()["total"] == 0 and stored_trials() == []
    # with a fallback, the same test goes out with it
    campaign = session.get(Campaign, env["campaign"].id)
    campaign.variable_mapping = {**MAPPING, "body.1": {"source": "field", "key": "first_name", "fallback": "friend"}}
    session.add(campaign)
    session.commit()
    assert send(env, "+33612345678").ok
    assert sb.entries()[0]["text"].startswith("Hi friend, your order")


def test_an_unsubscribed_number_is_refused(env, sb):
    session = env["session"]
    identity = session.exec(select(ContactIdentity).where(ContactIdentity.address == number(1))).one()
    identity.subscribed = False
    session.add(identity)
    session.commit()
    with pytest.raises(TrialSendError) as err:
        send(env, number(1))
    assert "has unsubscribed" in str(err.value)
    assert sb.log()["total"] == 0 and stored_trials() == []


def test_at_most_five_tests_per_user_per_minute(env, sb, make_user):
    for i in range(ts.MAX_PER_WINDOW):
        assert send(env, f"+3361234567{i}").ok
    with pytest.raises(TrialSendError) as err:
        send(env, "+33612345679")
    text = str(err.value)
    assert text.startswith("You have sent 5 test messages in the last minute; wait ")
    assert int(text.split("wait ")[1].split(" ")[0]) in range(1, 61)
    assert sb.log()["total"] == 5 and len(stored_trials()) == 5  # the sixth was neither sent nor stored
    # the limit is per user: a colleague can still test
    other = make_user("advanced")
    assert send_trial_message(session=env["session"], actor=other, campaign_id=env["campaign"].id, to="+33612345679").ok
    assert sb.log()["total"] == 6


def test_refused_without_a_session_a_deactivated_user_or_a_role_without_campaigns_edit(env, sb, make_user):
    session = env["session"]
    with pytest.raises(NotAuthenticated):
        send_trial_message(session=session, actor=None, campaign_id=env["campaign"].id, to="+33612345678")
    gone = make_user("basic", active=False)
    with pytest.raises(NotAuthenticated):
        send_trial_message(session=session, actor=gone, campaign_id=env["campaign"].id, to="+33612345678")
    # No built-in role lacks campaigns:edit today; a role the permission table does not know has no capability.
    stranger = make_user("basic")
    row = session.get(User, stranger.id)
    row.role = "viewer"
    session.add(row)
    session.commit()
    with pytest.raises(PermissionDenied) as err:
        send_trial_message(session=session, actor=stranger, campaign_id=env["campaign"].id, to="+33612345678")
    assert err.value.capability == "campaigns:edit"
    assert sb.log()["total"] == 0 and stored_trials() == []


# --- WhatsApp's refusals, in plain words --------------------------------------------------------------


def test_a_whatsapp_server_error_is_shown_clearly_and_recorded(env, sb):
    cid = env["campaign"].id
    before = counters(cid)
    sb.configure(server_error_for_s=30)
    result = send(env, "+33612345678")
    sb.configure(server_error_for_s=0)
    assert not result.ok and result.status == "failed"
    assert result.message.startswith("WhatsApp had a temporary problem; try again in a moment.")
    assert "#131000" in result.message
    assert sb.log()["total"] == 0  # refused, so not accepted by the Sandbox
    [row] = stored_trials(cid)
    assert (row.status, row.error_code, row.message_id) == ("failed", 131000, None)
    assert row.error == result.message
    assert counters(cid) == before and recipient_rows() == 0


def test_a_template_whatsapp_does_not_know_is_explained(session, redis_client, make_user, sb):
    user = make_user("basic")
    channel = make_channel(session, sb.url)
    template = make_template(session, channel, name="gone_template")
    clist = make_list(session, [number(0)])
    env = {"user": user, "session": session, "campaign": make_campaign(session, channel, template, clist)}
    result = send(env, "+33612345678")
    assert not result.ok
    assert result.message.startswith(
        "WhatsApp refused the template or its values; the campaign would fail the same way. (#132001"
    )
    assert stored_trials()[0].error_code == 132001


def test_a_wrong_access_token_is_explained(session, redis_client, make_user, sb):
    user = make_user("basic")
    channel = make_channel(session, sb.url, token="not-the-token")
    template = make_template(session, channel)
    clist = make_list(session, [number(0)])
    env = {"user": user, "session": session, "campaign": make_campaign(session, channel, template, clist)}
    result = send(env, "+33612345678")
    assert not result.ok
    assert result.message.startswith("WhatsApp refused the channel's access token; reconnect the channel")
    assert "#190" in result.message


# --- statuses from webhooks ---------------------------------------------------------------------------


def test_status_webhooks_move_the_test_to_delivered_then_read(
    session, redis_client, make_user, redis_url, database_url, tmp_path
):
    app_port = free_port()
    env_vars = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url,
        "HUBCAST_DATA_DIR": os.environ["HUBCAST_DATA_DIR"],
    }
    log = open(tmp_path / "app.log", "wb")
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from app.whatsapp.sandbox.server import serve; "
            "from app.http_api import build_http_api; serve(build_http_api(), '127.0.0.1', int(sys.argv[1]))",
            str(app_port),
        ],
        cwd=PROJECT_ROOT,
        env=env_vars,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    extra = (
        "--webhook-url",
        f"http://127.0.0.1:{app_port}/webhooks/whatsapp",
        "--sent-delay",
        "0.05,0.1",
        "--delivered-delay",
        "0.1,0.2",
        "--read-delay",
        "0.1,0.2",
        "--read-ratio",
        "1",
    )
    try:

        def up():
            assert server.poll() is None, (tmp_path / "app.log").read_text()
            try:
                return httpx.get(f"http://127.0.0.1:{app_port}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, 30, message="web server up")
        with run_sandbox(tmp_path / "sandbox", extra=extra) as sbx:
            env = _world(session, make_user, sbx.url)
            result = send(env, "+33612345678")
            assert result.ok
            wait_until(lambda: stored_trials()[0].status == "read", 20, interval=0.1, message="test send read")
            [row] = stored_trials()
            assert (row.status, row.message_id) == ("read", result.message_id)
            assert counters(env["campaign"].id)[1:] == (0,) * (len(COUNTERS) - 1) and recipient_rows() == 0
    finally:
        stop_process(server)
        log.close()


def test_a_file_audience_uses_the_row_of_that_number_else_the_first_row(session, redis_client, make_user, sb, tmp_path):
    user = make_user("advanced")
    channel = make_channel(session, sb.url)
    template = make_template(session, channel)
    (tmp_path / "a.csv").write_text("phone;name\nbad;x\n+33612345601;Zoe\n+33612345602;Yan\n")
    with open(tmp_path / "a.csv", "rb") as fh:
        stored = uploads.store_upload(fh, original_name="a.csv", purpose=svc.UPLOAD_PURPOSE)
    upload = svc.register_upload(
        session=session, actor=user, path=str(stored.path), original_name="a.csv", check=check_csv(stored.path)
    )
    campaign = Campaign(
        name="F",
        audience_kind="csv",
        audience_upload_id=upload.id,
        channel_id=channel.id,
        template_id=template.id,
        variable_mapping={**MAPPING, "body.1": {"source": "column", "key": "name"}},
    )
    session.add(campaign)
    session.commit()
    env = {"user": user, "session": session, "campaign": campaign}
    assert send(env, "+33612345602").ok
    assert send(env, "+33612345678").ok
    first, second = sb.entries()
    assert first["to"] == "+33612345602" and first["text"].startswith("Hi Yan, your order")
    assert second["to"] == "+33612345678" and second["text"].startswith("Hi Zoe, your order")
    assert recipient_rows() == 0
