"""All Campaigns' row actions and the wizard's send/schedule refusals, through the real Reflex event path.

The service rules themselves have their tests (test_scheduling, test_sending, test_campaign_drafts); here
the same rules are reached the way a browser reaches them: events sent to the app's real EventNamespace
(tests/support/reflex_client.py), against a real database, a real Redis, the real Sandbox
HTTP server and, for pause/resume, a real `hubcast worker` process. What a user would notice is asserted:
the toast says why, the status changes (or nothing changes at all), and the Sandbox never receives a
message twice."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update
from sqlmodel import select

from app.domain import permissions as perm
from app.models import AuditLog, Campaign, Channel, ContactIdentity, Segment, Template
from app.services.accounts import auth
from app.services.campaigns import drafts
from app.services.sending.lifecycle import schedule_campaign, start_campaign
from app.services.sending.scheduler import start_due_campaigns
from state.campaigns import CampaignsState
from state.segments import SegmentEditorState
from state.wizard import WizardState
from state.wizard_review import WizardReviewState
from tests.support.factories import MAPPING, campaign_row, make_channel, make_list, make_template, number, recipients
from tests.support.processes import stop_process, worker_process
from tests.support.reflex_client import CraftedClient, db_fingerprint, event_name
from tests.support.sandbox import run_sandbox
from tests.support.wait import wait_until

CAMPAIGNS = "/campaigns"


# --- a browser tab that does not wait for the page to be idle ---------------------------------------
# All Campaigns refreshes itself in a background task while anything is scheduled or sending, so "every
# event finished" never comes; these helpers wait for the answer that matters instead (a toast, a var).


async def _until(predicate, timeout: float = 20.0, message: str = "condition"):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await predicate()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{message} not met within {timeout}s")
        await asyncio.sleep(0.05)


async def open_tab(client: CraftedClient, cookie: str, path: str, cls) -> None:
    from reflex.state import State

    from state.base import SESSION_COOKIE, AppState

    # Like a browser: the cookie in the handshake too (the session is bound to it, issue 13 item 4).
    headers = [(b"user-agent", b"row-actions/1.0"), (b"cookie", f"{SESSION_COOKIE}={cookie}".encode())]
    environ = {
        "QUERY_STRING": f"token={client.token}",
        "asgi.scope": {"headers": headers, "client": (client.ip, 40000)},
    }
    boot = {
        "name": event_name(State, "hydrate_and_load"),
        "payload": {"vars": {f"{AppState.get_full_name()}.session_secret": cookie}},
        "router_data": {"pathname": path, "query": {}, "asPath": path},
    }
    await client.ns.on_connect(client.sid, environ, auth={"event": boot})

    async def loaded():
        return (await client.substate(cls)).loaded

    await _until(loaded, message=f"{cls.__name__} loaded")
    client.take()


async def act(client: CraftedClient, cls, handler: str, path: str, **payload) -> str:
    """Send one event and return the text of the toast(s) it answered with."""
    client.take()
    await client.ns.on_event(
        client.sid,
        {
            "name": event_name(cls, handler),
            "payload": payload,
            "token": "x",
            "router_data": {"pathname": path, "query": {}, "asPath": path},
        },
    )

    async def toast():
        out = client._recorder.get(client.sid)
        return out is not None and "toast" in out.texts() and out

    await _until(toast, timeout=20, message=f"a toast after {handler}")
    await asyncio.sleep(0.1)  # anything emitted in the same batch
    outcome = client.take()
    client.last_redirects = outcome.redirects()
    return outcome.texts()


async def set_var(client: CraftedClient, cls, handler: str, path: str, **payload) -> None:
    """Setter events answer with a state delta, not a toast."""
    await client.ns.on_event(
        client.sid,
        {
            "name": event_name(cls, handler),
            "payload": payload,
            "token": "x",
            "router_data": {"pathname": path, "query": {}, "asPath": path},
        },
    )
    await asyncio.sleep(0.3)
    client.take()


def login(session, redis_client, user) -> str:
    return auth.login(
        session=session, redis_client=redis_client, email=user.email, password="correct horse battery"
    ).session_secret


# --- data ----------------------------------------------------------------------------------------


@pytest.fixture()
def sb(tmp_path):
    with run_sandbox(tmp_path / "sandbox") as sandbox:
        yield sandbox


@pytest.fixture()
def env(session, make_user, sb):
    channel = make_channel(session, sb.url)
    template = make_template(session, channel)
    clist = make_list(session, [number(i) for i in range(30)])
    return {
        "channel": channel,
        "template": template,
        "list": clist,
        "basic": make_user("basic"),
        "advanced": make_user("advanced"),
        "session": session,
    }


def _draft(env, user, name: str = "Spring") -> Campaign:
    s = env["session"]
    draft = drafts.create_draft(session=s, actor=user, name=name)
    drafts.update_setup(
        session=s,
        actor=user,
        campaign_id=draft.id,
        name=name,
        audience_kind="list",
        audience_ref=env["list"].id,
        channel_id=env["channel"].id,
    )
    drafts.update_design(session=s, actor=user, campaign_id=draft.id, template_id=env["template"].id, mapping=MAPPING)
    drafts.set_wizard_step(session=s, actor=user, campaign_id=draft.id, step=3)
    s.commit()
    return draft


def _scheduled(env, user, name: str = "Spring") -> Campaign:
    draft = _draft(env, user, name)
    when = (datetime.now(ZoneInfo("Europe/Paris")) + timedelta(days=1)).replace(
        hour=9, minute=0, second=0, microsecond=0, tzinfo=None
    )
    return schedule_campaign(session=env["session"], actor=user, campaign_id=draft.id, tz="Europe/Paris", local_dt=when)


def _audit_actions(campaign_id: int) -> list[str]:
    from sqlmodel import Session

    from app.db import get_engine

    with Session(get_engine()) as s:
        return list(
            s.exec(
                select(AuditLog.action)
                .where(AuditLog.target_type == "campaign", AuditLog.target_id == str(campaign_id))
                .order_by(AuditLog.id)
            ).all()
        )


# --- row actions -----------------------------------------------------------------------------------


def test_reschedule_refuses_the_past_moves_the_run_time_and_starts_exactly_once(env, redis_client, reflex_backend):
    user = env["basic"]
    campaign = _scheduled(env, user)
    before = campaign_row(campaign.id).scheduled_at
    cookie = login(env["session"], redis_client, user)
    tokyo = ZoneInfo("Asia/Tokyo")
    past = datetime.now(tokyo) - timedelta(hours=1)
    future = (datetime.now(tokyo) + timedelta(days=2)).replace(hour=8, minute=15, second=0, microsecond=0)
    cid = str(campaign.id)

    async def scenario(new_client):
        tab = new_client()
        await open_tab(tab, cookie, CAMPAIGNS, CampaignsState)
        assert [r["status"] for r in (await tab.substate(CampaignsState)).rows] == ["scheduled"]
        await set_var(tab, CampaignsState, "open_reschedule", CAMPAIGNS, campaign_id=cid)
        state = await tab.substate(CampaignsState)
        # The dialog starts from the run time as the user chose it: 09:00 tomorrow in Paris.
        opened = (state.reschedule_id, state.reschedule_tz, state.reschedule_time, state.reschedule_note)
        await set_var(tab, CampaignsState, "set_reschedule_tz", CAMPAIGNS, value="Asia/Tokyo")
        await set_var(tab, CampaignsState, "set_reschedule_date", CAMPAIGNS, value=past.strftime("%Y-%m-%d"))
        await set_var(tab, CampaignsState, "set_reschedule_time", CAMPAIGNS, value=past.strftime("%H:%M"))
        past_note = (await tab.substate(CampaignsState)).reschedule_note
        await set_var(tab, CampaignsState, "confirm_reschedule", CAMPAIGNS)
        state = await tab.substate(CampaignsState)
        refused = state.reschedule_error
        past_state = (state.reschedule_id, campaign_row(campaign.id).scheduled_at)
        await set_var(tab, CampaignsState, "set_reschedule_date", CAMPAIGNS, value=future.strftime("%Y-%m-%d"))
        await set_var(tab, CampaignsState, "set_reschedule_time", CAMPAIGNS, value=future.strftime("%H:%M"))
        done = await act(tab, CampaignsState, "confirm_reschedule", CAMPAIGNS)
        state = await tab.substate(CampaignsState)
        await tab.close()
        return opened, past_note, refused, past_state, done, state.reschedule_id, state.rows

    opened, past_note, refused, past_state, done, open_after, rows = reflex_backend(scenario)
    assert opened == (cid, "Europe/Paris", "09:00", f"Sends at {before:%Y-%m-%d %H:%M} UTC")
    assert past_note.endswith("this time is in the past")
    assert refused == "Pick a time in the future."
    assert past_state == (cid, before)  # the dialog stays open, nothing moved
    assert "Campaign rescheduled." in done and open_after == ""
    moved = campaign_row(campaign.id)
    assert moved.status == "scheduled" and moved.timezone == "Asia/Tokyo"
    assert moved.scheduled_at.replace(tzinfo=UTC) == future.astimezone(UTC)
    assert rows[0]["status"] == "scheduled"
    assert _audit_actions(campaign.id)[-1] == "campaign.reschedule"

    # The old run time passes: nothing starts. The new one comes: exactly one of two ticks starts it.
    assert start_due_campaigns(now=before.replace(tzinfo=UTC) + timedelta(minutes=1)) == []
    assert campaign_row(campaign.id).status == "scheduled"
    at = future.astimezone(UTC) + timedelta(seconds=1)
    assert start_due_campaigns(now=at) == [campaign.id]
    assert start_due_campaigns(now=at) == []
    assert campaign_row(campaign.id).status == "sending"
    assert len(recipients(campaign.id)) == 30
    assert _audit_actions(campaign.id).count("campaign.send") == 1


def test_pause_and_resume_from_the_list_during_a_real_send_never_resend(
    env, redis_client, redis_url, database_url, reflex_backend, sb, tmp_path
):
    user, s = env["advanced"], env["session"]
    # 150 recipients at 25 messages a second: about six seconds of Sending, time to pause it.
    big = make_list(s, [number(1000 + i) for i in range(150)], name="Big")
    s.execute(update(Channel).where(Channel.id == env["channel"].id).values(messages_per_second=25))
    s.commit()
    draft = drafts.create_draft(session=s, actor=user, name="Big send")
    drafts.update_setup(
        session=s,
        actor=user,
        campaign_id=draft.id,
        name="Big send",
        audience_kind="list",
        audience_ref=big.id,
        channel_id=env["channel"].id,
    )
    drafts.update_design(session=s, actor=user, campaign_id=draft.id, template_id=env["template"].id, mapping=MAPPING)
    s.commit()
    cookie = login(s, redis_client, user)
    cid = str(draft.id)
    worker = worker_process(tmp_path, database_url, redis_url, "worker")
    try:
        start_campaign(session=s, actor=user, campaign_id=draft.id)

        def sandbox_total() -> int:
            return sb.log()["total"]

        wait_until(lambda: sandbox_total() >= 10, 60, message="the worker sending")

        async def pause(new_client):
            tab = new_client()
            await open_tab(tab, cookie, CAMPAIGNS, CampaignsState)
            text = await act(tab, CampaignsState, "pause_campaign", CAMPAIGNS, campaign_id=cid)
            await tab.close()
            return text

        assert "Campaign paused." in reflex_backend(pause)
        assert campaign_row(draft.id).status == "paused"
        assert campaign_row(draft.id).pause_reason == "Paused from All Campaigns"

        # Rows already claimed may still go out; then nothing more while it is paused.
        def settled():
            first = sandbox_total()
            time.sleep(1.5)  # the worker's claim window is 1 s: sampling the Sandbox across it
            return first if sandbox_total() == first else None

        paused_total = wait_until(settled, 30, interval=0, message="sending stopped while paused")
        assert 0 < paused_total < 150, paused_total
        queued = [r for r in recipients(draft.id) if r.status == "queued"]
        assert len(queued) == 150 - paused_total

        async def resume(new_client):
            tab = new_client()
            await open_tab(tab, cookie, CAMPAIGNS, CampaignsState)
            text = await act(tab, CampaignsState, "resume_campaign", CAMPAIGNS, campaign_id=cid)
            await tab.close()
            return text

        assert "Campaign resumed." in reflex_backend(resume)
        wait_until(lambda: campaign_row(draft.id).status == "sent", 90, message="the campaign finishing")
    finally:
        stop_process(worker)
    log = sb.log()
    assert log["total"] == 150
    assert max(log["per_recipient"].values()) == 1  # zero re-sends
    rows = recipients(draft.id)
    assert len(rows) == 150 and all(r.message_id for r in rows)
    assert len({r.message_id for r in rows}) == 150
    actions = _audit_actions(draft.id)
    assert actions.count("campaign.pause") == 1 and actions.count("campaign.resume") == 1


def test_cancel_duplicate_and_delete_from_the_list(env, redis_client, reflex_backend):
    user = env["basic"]
    scheduled = _scheduled(env, user, "Scheduled one")
    draft = _draft(env, user, "A draft")
    cookie = login(env["session"], redis_client, user)

    async def scenario(new_client):
        tab = new_client()
        await open_tab(tab, cookie, CAMPAIGNS, CampaignsState)
        out = {}
        out["cancel_draft"] = await act(tab, CampaignsState, "cancel_campaign", CAMPAIGNS, campaign_id=str(draft.id))
        out["cancel"] = await act(tab, CampaignsState, "cancel_campaign", CAMPAIGNS, campaign_id=str(scheduled.id))
        out["cancel_again"] = await act(
            tab, CampaignsState, "cancel_campaign", CAMPAIGNS, campaign_id=str(scheduled.id)
        )
        out["duplicate"] = await act(
            tab, CampaignsState, "duplicate_campaign", CAMPAIGNS, campaign_id=str(scheduled.id)
        )
        out["duplicate_missing"] = await act(tab, CampaignsState, "duplicate_campaign", CAMPAIGNS, campaign_id="999999")
        out["delete_cancelled"] = await act(
            tab, CampaignsState, "open_delete", CAMPAIGNS, campaign_id=str(scheduled.id)
        )
        out["confirm_without_choice"] = await act(tab, CampaignsState, "confirm_delete", CAMPAIGNS)
        await set_var(tab, CampaignsState, "open_delete", CAMPAIGNS, campaign_id=str(draft.id))
        out["delete_name"] = (await tab.substate(CampaignsState)).delete_name
        out["delete"] = await act(tab, CampaignsState, "confirm_delete", CAMPAIGNS)
        out["rows"] = [(r["name"], r["status"]) for r in (await tab.substate(CampaignsState)).rows]
        await tab.close()
        return out

    out = reflex_backend(scenario)
    assert "A Draft campaign cannot be cancelled." in out["cancel_draft"]
    assert "Campaign cancelled." in out["cancel"]
    assert "A Cancelled campaign cannot be cancelled." in out["cancel_again"]
    assert campaign_row(scheduled.id).status == "cancelled" and recipients(scheduled.id) == []
    assert campaign_row(draft.id) is None  # deleted below
    assert "Copied into a new draft." in out["duplicate"]
    assert "That campaign does not exist." in out["duplicate_missing"]
    assert "Only drafts can be deleted." in out["delete_cancelled"]
    assert "Choose a draft to delete." in out["confirm_without_choice"]
    assert out["delete_name"] == "A draft" and "Draft deleted." in out["delete"]
    assert sorted(out["rows"]) == [("Copy of Scheduled one", "draft"), ("Scheduled one", "cancelled")]
    copy = env["session"].exec(select(Campaign).where(Campaign.name == "Copy of Scheduled one")).one()
    assert copy.scheduled_at is None and copy.template_id == env["template"].id
    original = campaign_row(scheduled.id)
    assert copy.variable_mapping == original.variable_mapping and copy.audience_list_id == original.audience_list_id


# --- refusals (issue 5) ---------------------------------------------------------------------------


def test_basic_user_cannot_create_a_segment_from_the_wizard(env, redis_client, reflex_backend):
    user = env["basic"]
    draft = _draft(env, user)
    cookie = login(env["session"], redis_client, user)
    path = f"/segments/new?return_to=/campaigns/{draft.id}/edit"
    before = db_fingerprint()

    async def scenario(new_client):
        tab = new_client()
        await open_tab(tab, cookie, "/segments/new", SegmentEditorState)
        await set_var(tab, SegmentEditorState, "set_name", path, value="Made by a basic user")
        text = await act(tab, SegmentEditorState, "save", path)
        redirects = tab.last_redirects
        await tab.close()
        return text, redirects

    text, redirects = reflex_backend(scenario)
    assert "You don't have permission to do that." in text
    assert not any("created_segment" in (r or "") for r in redirects)
    assert env["session"].exec(select(Segment).where(Segment.name == "Made by a basic user")).first() is None
    assert db_fingerprint() == before
    refused = env["session"].exec(select(AuditLog).where(AuditLog.action == "permission.refused")).all()
    assert [(a.target_id, a.actor_id, a.detail) for a in refused] == [  # typing the name is refused too
        (f"SegmentEditorState.{h}", user.id, {"capability": perm.AUDIENCES_MANAGE}) for h in ("set_name", "save")
    ]


def _wizard_send(
    env, redis_client, reflex_backend, user, campaign_id: int, *, schedule: bool = False, before_send=None
):
    """Open the wizard on a ready draft (step 3), let `before_send` change the world, then send or schedule."""
    cookie = login(env["session"], redis_client, user)
    path = f"/campaigns/{campaign_id}/edit"
    when = datetime.now(ZoneInfo("Europe/Paris")) + timedelta(days=1)

    async def scenario(new_client):
        tab = new_client()
        await open_tab(tab, cookie, path, WizardState)
        if before_send is not None:
            before_send()
        fingerprint = db_fingerprint()
        if schedule:
            await set_var(tab, WizardReviewState, "set_timezone", path, value="Europe/Paris")
            await set_var(tab, WizardReviewState, "set_schedule_date", path, value=when.strftime("%Y-%m-%d"))
            await set_var(tab, WizardReviewState, "set_schedule_time", path, value="09:00")
            text = await act(tab, WizardReviewState, "confirm_schedule", path)
        else:
            text = await act(tab, WizardReviewState, "confirm_send", path)
        redirects = tab.last_redirects
        await tab.close()
        return text, redirects, fingerprint

    text, redirects, fingerprint = reflex_backend(scenario)
    return text, redirects, fingerprint


@pytest.mark.parametrize("schedule", [False, True], ids=["send", "schedule"])
def test_sending_or_scheduling_needs_campaigns_send(env, redis_client, reflex_backend, monkeypatch, schedule):
    user = env["basic"]
    draft = _draft(env, user)

    def revoke():  # a role without the right to send (as a deployment could define), decided on the server
        monkeypatch.setitem(
            perm.CAPABILITIES_BY_ROLE, perm.BASIC, perm.CAPABILITIES_BY_ROLE[perm.BASIC] - {perm.CAMPAIGNS_SEND}
        )

    text, redirects, fingerprint = _wizard_send(
        env, redis_client, reflex_backend, user, draft.id, schedule=schedule, before_send=revoke
    )
    assert "You don't have permission to do that." in text
    assert "/campaigns" not in redirects
    assert db_fingerprint() == fingerprint
    assert campaign_row(draft.id).status == "draft" and recipients(draft.id) == []


def _template_paused(env):
    def change():
        s = env["session"]
        s.execute(update(Template).where(Template.id == env["template"].id).values(status="PAUSED"))
        s.commit()

    return change


def _channel_disconnected(env):
    def change():
        s = env["session"]
        s.execute(update(Channel).where(Channel.id == env["channel"].id).values(status="disconnected"))
        s.commit()

    return change


def _audience_emptied(env):
    def change():
        s = env["session"]
        s.execute(update(ContactIdentity).values(subscribed=False))  # everyone unsubscribed meanwhile
        s.commit()

    return change


# Scheduling an audience that is empty today is allowed (it may fill up before the run time): the run
# itself refuses, says why and gives the draft back (test_scheduling covers that path).
REVALIDATED = (
    [
        pytest.param(
            _template_paused,
            "is not approved by WhatsApp (status PAUSED)",
            schedule,
            id=f"template-not-approved-{'schedule' if schedule else 'send'}",
        )
        for schedule in (False, True)
    ]
    + [
        pytest.param(
            _channel_disconnected,
            "is not connected",
            schedule,
            id=f"channel-disconnected-{'schedule' if schedule else 'send'}",
        )
        for schedule in (False, True)
    ]
    + [pytest.param(_audience_emptied, "The audience has no one to send to", False, id="audience-empty-send")]
)


@pytest.mark.parametrize("change, reason, schedule", REVALIDATED)
def test_the_server_revalidates_at_send_time(env, redis_client, reflex_backend, change, reason, schedule):
    user = env["basic"]
    draft = _draft(env, user)
    text, redirects, fingerprint = _wizard_send(
        env, redis_client, reflex_backend, user, draft.id, schedule=schedule, before_send=change(env)
    )
    assert reason in text, text
    assert "/campaigns" not in redirects
    assert db_fingerprint() == fingerprint  # nothing changed but the audit log
    assert campaign_row(draft.id).status == "draft" and recipients(draft.id) == []


@pytest.mark.parametrize("schedule", [False, True], ids=["send", "schedule"])
def test_a_ready_draft_is_sent_or_scheduled_from_the_wizard(env, redis_client, reflex_backend, schedule):
    """The refusals above can fail: the same path, untouched, goes through and lands on All Campaigns."""
    user = env["basic"]
    draft = _draft(env, user)
    text, redirects, _ = _wizard_send(env, redis_client, reflex_backend, user, draft.id, schedule=schedule)
    assert "/campaigns" in redirects
    if schedule:
        assert "is scheduled." in text and campaign_row(draft.id).status == "scheduled"
        assert recipients(draft.id) == []
    else:
        assert "is sending." in text and campaign_row(draft.id).status == "sending"
        assert len(recipients(draft.id)) == 30
