"""Issue 13, the low-severity holes (9, 10, 14, 15, 16): one attack each, against the real services and
routes, on a real database (and Redis where the path needs it)."""

from __future__ import annotations

from app.domain.permissions import PermissionDenied
from app.models import Campaign
from app.services.audiences import uploads
from app.services.audiences.csv_reader import check_csv
from app.services.campaigns import drafts
from app.services.sending import lifecycle
from tests.support.factories import MAPPING, make_channel, make_template
from tests.support.hardening import record

CSV_MAPPING = {**MAPPING, "body.1": {"source": "column", "key": "first_name"}}


# --- 9: a CSV audience needs audiences:manage when the campaign is sent, not only when it is set up -----


def _csv_campaign(session, make_user, tmp_path) -> tuple[Campaign, object]:
    advanced = make_user("advanced")
    channel = make_channel(session, "http://127.0.0.1:9")
    template = make_template(session, channel)
    (tmp_path / "a.csv").write_bytes(b"phone,first_name\n+33612345678,Ana\n+33612345679,Bo\n")
    with open(tmp_path / "a.csv", "rb") as fh:
        stored = uploads.store_upload(fh, original_name="a.csv", purpose=drafts.UPLOAD_PURPOSE)
    upload = drafts.register_upload(
        session=session, actor=advanced, path=str(stored.path), original_name="a.csv", check=check_csv(stored.path)
    )
    session.flush()
    campaign = Campaign(
        name="File campaign",
        audience_kind="csv",
        audience_upload_id=upload.id,
        channel_id=channel.id,
        template_id=template.id,
        variable_mapping=CSV_MAPPING,
        created_by_id=advanced.id,
    )
    session.add(campaign)
    session.commit()
    return campaign, advanced


def test_a_basic_user_cannot_send_a_duplicated_csv_campaign(session, make_user, redis_client, tmp_path):
    source, advanced = _csv_campaign(session, make_user, tmp_path)
    basic = make_user("basic")
    copy = drafts.duplicate_campaign(session=session, actor=basic, campaign_id=source.id)  # allowed: a draft
    session.commit()
    outcomes = {}
    for name, call in {
        "send now": lambda: lifecycle.start_campaign(session=session, actor=basic, campaign_id=copy.id),
        "schedule": lambda: lifecycle.schedule_campaign(
            session=session, actor=basic, campaign_id=copy.id, tz="UTC", local_dt="2099-01-01 10:00"
        ),
    }.items():
        try:
            call()
            outcomes[name] = "allowed"
        except PermissionDenied:
            outcomes[name] = "refused"
        except lifecycle.SendingError as exc:
            outcomes[name] = f"not ready: {exc}"
        session.rollback()
    after = session.get(Campaign, copy.id)
    session.refresh(after)
    status_after_refusals = after.status
    # Control: the advanced user who may manage audiences sends the same copy.
    sent = lifecycle.start_campaign(session=session, actor=advanced, campaign_id=copy.id)
    ok = outcomes == {"send now": "refused", "schedule": "refused"} and sent.status == "sending"
    record(
        "handlers",
        "basic user sends a duplicated CSV campaign (send now, schedule)",
        ok=ok,
        checked=3,
        refused_correctly=sum(v == "refused" for v in outcomes.values()),
        allowed_correctly=int(sent.status == "sending"),
        outcomes=outcomes,
    )
    assert outcomes == {"send now": "refused", "schedule": "refused"}
    assert status_after_refusals == "draft"
    assert sent.status == "sending"


# --- 10: email checks take linear time whatever the input ---------------------------------------------


def test_crafted_long_emails_are_refused_at_once(session, make_user):
    import time

    from app.services.accounts import users
    from app.services.audiences import contacts

    admin = make_user("admin")
    crafted = {
        "20,000 dots then a space": "a@" + "." * 20_000 + " ",
        "20,000 dots then an @": "a@" + "." * 20_000 + "@",
        "100,000 characters, no @": "x" * 100_000,
    }
    timings = {}
    for name, email in crafted.items():
        started = time.perf_counter()
        try:
            users.create_user(session=session, actor=admin, email=email, role="basic", password="long enough pw 1")
            refused = False
        except users.UserError:
            refused = True
        try:
            contacts.clean_field("email", email)
            refused_contact = False
        except contacts.ContactError:
            refused_contact = True
        timings[name] = (round(time.perf_counter() - started, 4), refused and refused_contact)
    session.rollback()
    worst = max(t for t, _ in timings.values())
    ok = worst < 0.1 and all(r for _, r in timings.values())
    record(
        "handlers",
        "crafted long email addresses (user and contact forms)",
        ok=ok,
        checked=len(crafted),
        refused_correctly=sum(r for _, r in timings.values()),
        allowed_correctly=0,
        worst_s=worst,
    )
    assert all(r for _, r in timings.values()), timings
    assert worst < 0.1, timings


# --- 14: malformed but signed webhooks answer 400 and are kept as rejected, never a 500 -----------------


def _malformed_bodies() -> dict[str, bytes]:
    import json

    from tests.support.webhook_payloads import PNID, envelope, status_item

    def env_with(value_patch=None, change_patch=None, top_patch=None) -> bytes:
        payload = envelope([status_item("wamid.m.1", "delivered")])
        if value_patch:
            payload["entry"][0]["changes"][0]["value"].update(value_patch)
        if change_patch:
            payload["entry"][0]["changes"][0].update(change_patch)
        if top_patch:
            payload.update(top_patch)
        return json.dumps(payload).encode()

    def message(**fields) -> dict:
        return {"from": "33612345678", "id": "wamid.in.m", "timestamp": "1750000000", "type": "text", **fields}

    deep = {"a": 1}
    for _ in range(300):
        deep = {"a": deep}
    return {
        "not JSON": b'{"object": "whatsapp_business_account", "entry": [',
        "100,000 nested arrays": b"[" * 100_000 + b"]" * 100_000,
        "300-deep object inside a status": env_with({"statuses": [{**status_item("wamid.m.2", "sent"), "x": deep}]}),
        "top level is a list": b"[1, 2, 3]",
        "entry is a string": env_with(top_patch={"entry": "nope"}),
        "changes is an object": json.dumps(
            {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": {"field": "messages"}}]}
        ).encode(),
        "value is a list": env_with(change_patch={"value": [1]}),
        "metadata is a string": env_with({"metadata": "x"}),
        "statuses is an object": env_with({"statuses": {"id": "wamid.m.3"}}),
        "a status is a number": env_with({"statuses": [7]}),
        "a status id is an object": env_with({"statuses": [{"id": {"x": 1}, "status": "sent"}]}),
        "errors is a string": env_with({"statuses": [{**status_item("wamid.m.4", "failed"), "errors": "boom"}]}),
        "text is a string": env_with({"messages": [message(text="STOP")], "metadata": {"phone_number_id": PNID}}),
        "context is a string": env_with({"messages": [message(text={"body": "hi"}, context="wamid.x")]}),
        "interactive reply is a list": env_with({"messages": [message(type="interactive", interactive=[1])]}),
    }


def test_malformed_signed_webhooks_answer_400_and_are_kept_as_rejected(webhook_world, redis_client):
    import asyncio

    import httpx
    from sqlmodel import Session, func, select

    from app.db import get_engine
    from app.http_api import build_http_api
    from app.models import AuditLog, InboundMessage, WebhookStatusEvent
    from app.whatsapp.signature import HEADER, sign
    from tests.support.webhook_payloads import SECRET

    bodies = _malformed_bodies()

    async def post_all():
        transport = httpx.ASGITransport(app=build_http_api(), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://hubcast.test") as client:
            return {
                name: (
                    await client.post("/webhooks/whatsapp", content=raw, headers={HEADER: sign(raw, SECRET)})
                ).status_code
                for name, raw in bodies.items()
            }

    codes = asyncio.run(post_all())
    with Session(get_engine()) as s:
        rejected = s.exec(select(AuditLog).where(AuditLog.action == "webhook.rejected")).all()
        stored = (
            s.exec(select(func.count()).select_from(WebhookStatusEvent)).one()
            + s.exec(select(func.count()).select_from(InboundMessage)).one()
        )
    ok = all(c == 400 for c in codes.values()) and len(rejected) == len(bodies) and stored == 0
    record(
        "handlers",
        "malformed signed webhooks (bad JSON, deep nesting, wrong types)",
        ok=ok,
        checked=len(bodies),
        refused_correctly=sum(c == 400 for c in codes.values()),
        allowed_correctly=0,
        answers=sorted(set(codes.values())),
        kept_as_rejected=len(rejected),
        stored_events=stored,
    )
    assert codes == {name: 400 for name in bodies}
    assert len(rejected) == len(bodies)
    assert all(r.detail.get("reason") and r.detail.get("sha256") for r in rejected)
    assert stored == 0


# --- 15: a campaign name in any script exports (RFC 6266 filename*) ----------------------------------------


def test_export_of_a_campaign_with_a_non_latin_name(session, make_user, redis_client):
    import asyncio
    from urllib.parse import unquote

    import httpx

    from app.http_api import SESSION_COOKIE, build_http_api, campaign_export_url
    from app.services.accounts import auth
    from tests.support.stores import PASSWORD

    user = make_user("basic")
    names = ["Soldes d’été 🎉", "日本のセール", 'Распродажа "зима"; x=1', 'Quote " and \\ back']
    campaigns = [Campaign(name=n, status="sent", created_by_id=user.id) for n in names]
    session.add_all(campaigns)
    session.commit()
    secret = auth.login(session=session, redis_client=redis_client, email=user.email, password=PASSWORD).session_secret

    async def fetch_all():
        transport = httpx.ASGITransport(app=build_http_api(), raise_app_exceptions=False)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://hubcast.test", cookies={SESSION_COOKIE: secret}
        ) as client:
            return [await client.get(campaign_export_url(c.id)) for c in campaigns]

    responses = asyncio.run(fetch_all())
    results = []
    for campaign, response in zip(campaigns, responses, strict=True):
        header = response.headers.get("content-disposition", "")
        star = header.split("filename*=UTF-8''", 1)[1].split(";")[0] if "filename*=UTF-8''" in header else ""
        fallback = header.split('filename="', 1)[1].split('"', 1)[0] if 'filename="' in header else ""
        letters = "".join(ch for ch in campaign.name if ch.isalnum())  # what the name says, in its own script
        results.append(
            (response.status_code, fallback.isascii() and bool(fallback), letters in unquote(star).replace("-", ""))
        )
    ok = all(r == (200, True, True) for r in results)
    record(
        "input",
        "export of campaigns named in other scripts (emoji, Japanese, Cyrillic with quotes)",
        ok=ok,
        detail=f"answers {[r[0] for r in results]}; ASCII fallback + UTF-8 filename* {[r[1:] for r in results]}",
    )
    assert results == [(200, True, True)] * len(names), results


# --- 16: a scheduled campaign does not go out once the user who scheduled it was deactivated ----------------


def test_a_scheduled_campaign_of_a_deactivated_user_is_paused_not_sent(session, make_user, redis_client):
    from datetime import timedelta

    from app.services.accounts import users
    from app.services.sending import scheduler
    from app.timeutil import utcnow
    from tests.support.factories import make_campaign, make_list, number

    admin, leaver = make_user("admin"), make_user("advanced")
    channel = make_channel(session, "http://127.0.0.1:9")
    campaign = make_campaign(session, channel, make_template(session, channel), make_list(session, [number(1)]))
    campaign.created_by_id = leaver.id
    session.add(campaign)
    session.commit()
    in_an_hour = (utcnow() + timedelta(hours=1)).replace(tzinfo=None).isoformat(timespec="minutes")
    lifecycle.schedule_campaign(session=session, actor=leaver, campaign_id=campaign.id, tz="UTC", local_dt=in_an_hour)
    users.set_active(session=session, actor=admin, user_id=leaver.id, active=False)
    session.commit()
    started = scheduler.start_due_campaigns(now=utcnow() + timedelta(hours=2))
    row = session.get(Campaign, campaign.id)
    session.refresh(row)
    held = (row.status, row.pause_reason, row.started_at)
    # A person who may send resumes it: only then is the audience frozen and the campaign sent.
    resumed = lifecycle.resume_campaign(session=session, actor=admin, campaign_id=campaign.id)
    ok = started == [] and held[0] == "paused" and "deactivated" in held[1] and resumed.status in ("sending", "sent")
    record(
        "handlers",
        "scheduled campaign whose scheduler was deactivated (held, then resumed by an admin)",
        ok=ok,
        checked=2,
        refused_correctly=int(started == [] and held[0] == "paused"),
        allowed_correctly=int(resumed.status in ("sending", "sent")),
        status=held[0],
        reason=held[1],
    )
    assert started == []
    assert held[0] == "paused" and held[2] is None, held
    assert "deactivated" in held[1] and leaver.email in held[1]
    assert resumed.status in ("sending", "sent") and resumed.total_recipients == 1


def test_a_scheduled_csv_campaign_of_a_demoted_user_is_paused_not_sent(session, make_user, redis_client, tmp_path):
    from datetime import timedelta

    from app.services.accounts import users
    from app.services.sending import scheduler
    from app.timeutil import utcnow

    campaign, advanced = _csv_campaign(session, make_user, tmp_path)
    admin = make_user("admin")
    in_an_hour = (utcnow() + timedelta(hours=1)).replace(tzinfo=None).isoformat(timespec="minutes")
    lifecycle.schedule_campaign(session=session, actor=advanced, campaign_id=campaign.id, tz="UTC", local_dt=in_an_hour)
    users.change_role(session=session, actor=admin, user_id=advanced.id, role="basic")  # no audiences:manage now
    session.commit()
    assert scheduler.start_due_campaigns(now=utcnow() + timedelta(hours=2)) == []
    row = session.get(Campaign, campaign.id)
    session.refresh(row)
    assert row.status == "paused" and "may no longer send it" in row.pause_reason
