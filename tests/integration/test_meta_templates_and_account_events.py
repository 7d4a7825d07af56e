"""Issue 12, points 1 and 3, played by the real Sandbox process against a real `hubcast worker`, the app's
webhook route served by a real process (the Sandbox posts its signed webhooks there), real Redis and database.

1. Templates Hubcast cannot fill are never offered: a carousel, a limited-time offer, catalog, multi-product and
   Flow templates are unsendable with the reason on the Templates page and in the wizard, and refused by
   readiness; a LOCATION header and an authentication template's OTP button are filled and sent. The Sandbox
   refuses the unfillable ones as Meta does (131008).
3. Meta's other webhook fields are applied: a template PAUSED by WhatsApp pauses the Sending and the Scheduled
   campaigns using it, with the reason on the campaign; its quality and category are shown; APPROVED again
   lets them resume; phone number quality / limit tier and account restrictions reach the Channels page;
   user_preferences "stop" unsubscribes the contact (and "resume" undoes only that stop).

Each asserts what a user sees and that nobody got a message twice (the Sandbox's own log)."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import httpx
import pytest
from sqlmodel import Session, select

from app.db import get_engine
from app.domain.readiness import TEMPLATE_UNSENDABLE
from app.models import AuditLog, Campaign, Channel, ContactIdentity, Template
from app.services.campaigns import drafts
from app.services.campaigns.draft_view import draft_view
from app.services.channels.channels import channels_overview
from app.services.channels.templates import sync_templates, templates_page
from app.services.sending.lifecycle import SendingError, resume_campaign, schedule_campaign, start_campaign
from app.services.sending.readiness import SEND, campaign_problems
from app.timeutil import utcnow
from tests.support.factories import MAPPING, campaign_row, make_campaign, make_channel, make_list, number, recipients
from tests.support.processes import http_api_process, stop_process, worker_process
from tests.support.sandbox import PNID, TOKEN, run_sandbox
from tests.support.wait import wait_until

FAST_WEBHOOKS = ("--sent-delay", "0.1,0.3", "--delivered-delay", "0.2,0.5", "--read-delay", "0.2,0.5")
WORKER_ENV = {"HUBCAST_SEND_TICK_INTERVAL_S": "1", "HUBCAST_SEND_LANES": "1"}
UNFILLABLE = {
    "autumn_carousel": "a carousel",
    "flash_offer": "a limited-time offer",
    "catalog_picks": "a catalog button",
    "product_sections": "a multi-product button",
    "signup_flow": "a WhatsApp Flow button",
}


@contextlib.contextmanager
def world(tmp_path, database_url, redis_url):
    """The webhook route (a real server), the Sandbox posting to it, and one worker; yields the Sandbox."""
    with (
        http_api_process(tmp_path / "web", database_url, redis_url) as web,
        run_sandbox(tmp_path / "sandbox", extra=("--webhook-url", f"{web}/webhooks/whatsapp", *FAST_WEBHOOKS)) as sb,
    ):
        worker = worker_process(tmp_path, database_url, redis_url, "w0", WORKER_ENV)
        try:
            yield sb
        finally:
            stop_process(worker)


def synced_channel(session, sb, admin, *, mps: int) -> Channel:
    channel = make_channel(session, sb.url, mps=mps)
    sync_templates(session=session, actor=admin, channel_id=channel.id)
    session.commit()
    return channel


def template(name: str, language: str = "en_US") -> Template:
    with Session(get_engine()) as s:
        return s.exec(select(Template).where(Template.name == name, Template.language == language)).one()


def page_row(session, admin, name: str) -> dict:
    session.expire_all()
    rows = templates_page(session=session, actor=admin, search=name).rows
    return next(r for r in rows if r["name"] == name and r["language"] == "en_US")


def account_webhook(sb, field: str, value: dict, **extra) -> dict:
    return sb.admin("POST", "/_sandbox/account_webhook", json={"field": field, "value": value, **extra})


def finished(campaign_id: int, *statuses: str) -> Campaign | None:
    row = campaign_row(campaign_id)
    return row if row.status in statuses else None


def subscribed(address: str) -> bool:
    with Session(get_engine()) as s:
        return s.exec(select(ContactIdentity).where(ContactIdentity.address == address)).one().subscribed


# --- point 1 ---------------------------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_templates_hubcast_cannot_fill_are_never_offered_and_location_and_otp_are_sent(
    session, redis_client, redis_url, database_url, make_user, tmp_path
):
    admin = make_user("admin")
    visitors = [number(i) for i in range(3)]
    coders = [number(i) for i in range(3, 5)]
    with world(tmp_path, database_url, redis_url) as sb:
        channel = synced_channel(session, sb, admin, mps=50)

        # The Templates page says why each one cannot be sent; the ones Hubcast fills say nothing.
        for name, words in UNFILLABLE.items():
            reason = page_row(session, admin, name)["unsendable"]
            assert reason.startswith("Hubcast cannot send this template: it has " + words), (name, reason)
        assert page_row(session, admin, "store_visit")["unsendable"] == ""
        assert page_row(session, admin, "login_code")["unsendable"] == ""

        # The wizard never offers them, says so with the reason, and refuses one chosen anyway.
        carousel = template("autumn_carousel")
        visit = make_campaign(
            session,
            channel,
            template("store_visit"),
            make_list(session, visitors, name="Visitors"),
            name="Store visit",
            mapping={
                "header.latitude": {"source": "text", "value": "48.8566"},
                "header.longitude": {"source": "text", "value": "2.3522"},
                "header.name": {"source": "text", "value": "Hubcast Store"},
                "header.address": {"source": "field", "key": "city", "fallback": "1 rue de Rivoli, Paris"},
                "body.1": {"source": "field", "key": "first_name"},
            },
        )
        view = draft_view(session=session, actor=admin, campaign_id=visit.id, step=2)
        offered = {o["name"] for o in view.template_options}
        assert "store_visit · en_US" in offered and "login_code · en_US" in offered
        assert not any(name in o for o in offered for name in UNFILLABLE), offered
        shown = {t["name"]: t["reason"] for t in view.unfillable_templates}
        assert shown["autumn_carousel · en_US"].startswith("Hubcast cannot send this template: it has a carousel")
        assert set(shown) == {f"{n} · en_US" for n in UNFILLABLE}
        with pytest.raises(drafts.CampaignError, match="it has a carousel"):
            drafts.update_design(session=session, actor=admin, campaign_id=visit.id, template_id=carousel.id)

        # A campaign that already points at it (made before this rule) is refused by readiness at Send.
        stuck = make_campaign(session, channel, carousel, make_list(session, [number(9)], name="Stuck"), name="Stuck")
        problems = campaign_problems(session, stuck, SEND)
        assert [p.code for p in problems] == [TEMPLATE_UNSENDABLE], problems
        with pytest.raises(SendingError, match="it has a carousel"):
            start_campaign(session=session, actor=admin, campaign_id=stuck.id)

        # The Sandbox refuses it as Meta would: the carousel's cards are missing.
        answer = httpx.post(
            f"{sb.url}/v23.0/{PNID}/messages",
            headers={"Authorization": f"Bearer {TOKEN}"},
            json={
                "messaging_product": "whatsapp",
                "to": number(9),
                "type": "template",
                "template": {
                    "name": "autumn_carousel",
                    "language": {"code": "en_US"},
                    "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}],
                },
            },
            timeout=10,
        )
        assert answer.status_code == 400 and answer.json()["error"]["code"] == 131008, answer.text

        # LOCATION header and OTP button: filled, accepted, sent once each.
        otp = make_campaign(
            session,
            channel,
            template("login_code"),
            make_list(session, coders, name="Codes", first_name=lambda i: f"48291{i}"),
            name="Codes",
            mapping={"body.1": {"source": "field", "key": "first_name"}},
        )
        for campaign in (visit, otp):
            start_campaign(session=session, actor=admin, campaign_id=campaign.id)
        for campaign in (visit, otp):
            done = wait_until(lambda c=campaign: finished(c.id, "sent", "paused", "failed"), timeout=90, interval=0.3)
            assert done.status == "sent", done.pause_reason
        entries = sb.entries()
        log = sb.log()

    by_template: dict[str, list[dict]] = {}
    for entry in entries:
        by_template.setdefault(entry["template"], []).append(entry)
    assert sorted(e["wa_id"] for e in by_template["store_visit"]) == sorted(n[1:] for n in visitors)
    assert all(
        e["text"].startswith("[location: Hubcast Store, 1 rue de Rivoli, Paris]\nHi Ana")
        for e in by_template["store_visit"]
    )
    assert sorted(e["text"].split("*")[1] for e in by_template["login_code"]) == ["482910", "482911"]
    assert set(by_template) == {"store_visit", "login_code"}, "nothing unfillable was ever sent"
    assert all(r.status != "failed" for c in (visit, otp) for r in recipients(c.id))
    assert not log["duplicates"] and log["total"] == len(visitors) + len(coders)


# --- point 3 ---------------------------------------------------------------------------------------


@pytest.mark.timeout(240)
def test_a_template_paused_by_whatsapp_pauses_its_campaigns_and_its_status_quality_category_show(
    session, redis_client, redis_url, database_url, make_user, tmp_path
):
    admin = make_user("admin")
    now_numbers = [number(i) for i in range(12)]
    later_numbers = [number(i) for i in range(20, 23)]
    with world(tmp_path, database_url, redis_url) as sb:
        channel = synced_channel(session, sb, admin, mps=1)  # 12 s of sending: the webhook lands meanwhile
        order = template("order_update")
        sending = make_campaign(session, channel, order, make_list(session, now_numbers, name="Now"), name="Now")
        later = make_campaign(session, channel, order, make_list(session, later_numbers, name="Later"), name="Later")
        in_an_hour = (utcnow() + timedelta(hours=1)).replace(tzinfo=None, microsecond=0)
        schedule_campaign(session=session, actor=admin, campaign_id=later.id, tz="UTC", local_dt=in_an_hour)
        start_campaign(session=session, actor=admin, campaign_id=sending.id)
        wait_until(lambda: sb.log()["total"] >= 2, timeout=60, message="the first messages went out")

        # WhatsApp pauses the template. Only the webhook says so (the Sandbox's catalogue is left as it
        # was), so what stops the campaign is the webhook, not a refused send.
        account_webhook(
            sb,
            "message_template_status_update",
            {
                "event": "PAUSED",
                "message_template_name": "order_update",
                "message_template_language": "en_US",
                "reason": "NONE",
                "other_info": {"title": "FIRST_PAUSE", "description": "Paused for 3 hours: low quality"},
            },
            catalog=False,
        )
        paused = wait_until(lambda: finished(sending.id, "paused", "sent"), timeout=30, interval=0.2)
        held = wait_until(lambda: finished(later.id, "paused"), timeout=30, interval=0.2)
        for campaign in (paused, held):
            assert campaign.status == "paused"
            assert campaign.pause_reason.startswith(
                "WhatsApp paused the template “order_update” (en_US) (FIRST_PAUSE: Paused for 3 hours: low quality)"
            ), campaign.pause_reason
        row = page_row(session, admin, "order_update")
        assert row["status"] == "PAUSED"
        assert row["status_reason"] == "Paused by WhatsApp (FIRST_PAUSE: Paused for 3 hours: low quality)"
        assert "order_update · en_US" not in {
            f"{t.name} · {t.language}"
            for t in drafts.sendable_templates(session=session, actor=admin, channel_id=channel.id)
        }
        with pytest.raises(SendingError, match="not approved"):
            resume_campaign(session=session, actor=admin, campaign_id=sending.id)

        # Quality and category changes are shown on the Templates page.
        account_webhook(
            sb,
            "message_template_quality_update",
            {"message_template_name": "order_update", "message_template_language": "en_US", "new_quality_score": "RED"},
        )
        account_webhook(
            sb,
            "template_category_update",
            {"message_template_name": "spring_sale", "message_template_language": "en_US", "new_category": "UTILITY"},
        )
        wait_until(lambda: page_row(session, admin, "order_update")["quality"] == "RED", timeout=30)
        wait_until(lambda: page_row(session, admin, "spring_sale")["category"] == "UTILITY", timeout=30)

        # Approved again: the template is offered again; the campaigns stay paused until a person resumes them.
        account_webhook(
            sb,
            "message_template_status_update",
            {"event": "APPROVED", "message_template_name": "order_update", "message_template_language": "en_US"},
        )
        wait_until(lambda: page_row(session, admin, "order_update")["status"] == "APPROVED", timeout=30)
        assert campaign_row(sending.id).status == "paused" and campaign_row(later.id).status == "paused"
        sent_while_paused = sb.log()["total"]
        resume_campaign(session=session, actor=admin, campaign_id=sending.id)
        resume_campaign(session=session, actor=admin, campaign_id=later.id)
        for campaign in (sending, later):
            done = wait_until(lambda c=campaign: finished(c.id, "sent", "paused", "failed"), timeout=90, interval=0.3)
            assert done.status == "sent", done.pause_reason
        log = sb.log()
        with Session(get_engine()) as s:
            audited = s.exec(select(AuditLog.action).where(AuditLog.actor_email == "whatsapp")).all()

    assert sent_while_paused < len(now_numbers), "the pause stopped the campaign before its end"
    assert sorted(log["per_recipient"]) == sorted(now_numbers + later_numbers), "everyone got one message"
    assert not log["duplicates"], "nobody was sent twice"
    assert all(r.status != "failed" for r in recipients(sending.id) + recipients(later.id))
    assert {"template.message_template_status_update", "campaign.auto_pause"} <= set(audited)


@pytest.mark.timeout(180)
def test_phone_quality_account_restrictions_and_marketing_stop_are_applied(
    session, redis_client, redis_url, database_url, make_user, tmp_path
):
    admin = make_user("admin")
    stops, keyword, stays = number(0), number(1), number(2)
    with world(tmp_path, database_url, redis_url) as sb:
        channel = synced_channel(session, sb, admin, mps=50)
        order = template("order_update")

        account_webhook(
            sb, "phone_number_quality_update", {"event": "UPGRADE", "current_limit": "TIER_10K", "old_limit": "TIER_2K"}
        )
        wait_until(
            lambda: channel_row(session, admin, channel.id)["account_notice"].startswith(
                "WhatsApp raised this number's messaging limit to TIER_10K (was TIER_2K)."
            ),
            timeout=30,
        )
        account_webhook(sb, "phone_number_quality_update", {"event": "FLAGGED", "current_limit": "TIER_10K"})
        wait_until(lambda: channel_row(session, admin, channel.id)["quality"] == "FLAGGED", timeout=30)
        with Session(get_engine()) as s:
            assert s.get(Channel, channel.id).messaging_limit_tier == "TIER_10K"
        account_webhook(
            sb,
            "account_update",
            {
                "event": "ACCOUNT_RESTRICTION",
                "restriction_info": [
                    {"restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING", "expiration": 1893456000}
                ],
            },
        )
        wait_until(
            lambda: channel_row(session, admin, channel.id)["account_notice"].startswith(
                "WhatsApp restricted this account: RESTRICTED_BIZ_INITIATED_MESSAGING."
            ),
            timeout=30,
        )

        # A person stops marketing messages in WhatsApp; another writes STOP.
        clist = make_list(session, [stops, keyword, stays], name="Prefs")
        account_webhook(sb, "user_preferences", {"wa_id": stops[1:], "value": "stop"})
        sb.admin("POST", "/_sandbox/inbound", json={"from": keyword, "text": "STOP"})
        wait_until(lambda: not subscribed(stops) and not subscribed(keyword), timeout=30, message="both unsubscribed")

        campaign = make_campaign(session, channel, order, clist, name="After the stop", mapping=MAPPING)
        start_campaign(session=session, actor=admin, campaign_id=campaign.id)
        done = wait_until(lambda: finished(campaign.id, "sent", "paused", "failed"), timeout=90, interval=0.3)
        assert done.status == "sent", done.pause_reason
        log = sb.log()

        # Resuming marketing in WhatsApp undoes that stop only; STOP written to us stays.
        for address in (stops, keyword):
            account_webhook(sb, "user_preferences", {"wa_id": address[1:], "value": "resume"})
        wait_until(lambda: subscribed(stops), timeout=30, message="the marketing stop undone")
        wait_until(lambda: _audited("contact.resume_ignored") == 1, timeout=30)

    assert not subscribed(keyword), "a resume in WhatsApp is not consent to what the person refused here"
    assert sorted(log["per_recipient"]) == [stays], "only the subscribed contact was sent"
    assert not log["duplicates"]


def channel_row(session, admin, channel_id: int) -> dict:
    session.expire_all()
    return next(r for r in channels_overview(session=session, actor=admin) if r["id"] == channel_id)


def _audited(action: str) -> int:
    with Session(get_engine()) as s:
        return len(s.exec(select(AuditLog.id).where(AuditLog.action == action)).all())
