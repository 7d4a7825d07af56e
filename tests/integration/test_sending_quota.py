"""Issue 12, points 7 and 8, against the real Sandbox process, real RQ workers, real Redis and database.

- Meta's daily messaging limit: the Sandbox enforces a tiny tier (20 people per 30-second window, #131048
  past it) and advertises it; the channel records it on connect; a second number of the same portfolio
  spends part of it; the review step says how many new conversations the campaign needs and how many are
  left; the engine (a `hubcast worker` process) sends what fits, shows the rest "waiting for quota" and
  sends it as the window frees: the Sandbox never refuses one, and nobody gets a campaign twice.
- The frequency cap: recipients another marketing campaign reached within N hours are skipped ("frequency
  cap") when the audience is frozen, counted on the review step and in the counts before anything is sent.
- #131049 (Meta's per-user marketing limit, by status webhook through the real HTTP route) is recorded as
  "limited", not failed, and a later campaign tries that person again (the frequency cap does not count it).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import pytest
from sqlalchemy import insert, select
from sqlmodel import Session

from app.db import get_engine
from app.domain.messaging_limits import FREQUENCY_CAP_TITLE, QUOTA_WAIT_TITLE
from app.models import Channel, ContactIdentity, ContactList, ListMembership
from app.services.campaigns.draft_view import draft_view
from app.services.campaigns.results import campaign_summary
from app.services.channels.channels import test_connection
from app.services.channels.messaging_limit import record_tier
from app.services.sending.lifecycle import start_campaign
from app.timeutil import utcnow
from tests.support.factories import (
    campaign_row,
    make_campaign,
    make_channel,
    make_list,
    make_template,
    number,
    recipients,
)
from tests.support.processes import drive_until, http_api_process, stop_process, worker_process
from tests.support.sandbox import PNID, SECRET, TOKEN, run_sandbox
from tests.support.wait import wait_until

TIER, WINDOW_S = 20, 40.0


def _sub_list(session: Session, name: str, addresses: list[str]) -> ContactList:
    """A list of contacts that already exist (a person is one contact, whatever the lists they are on)."""
    clist = ContactList(name=name)
    session.add(clist)
    session.commit()
    ids = (
        session.execute(select(ContactIdentity.contact_id).where(ContactIdentity.address.in_(addresses)))
        .scalars()
        .all()
    )
    assert len(ids) == len(addresses)
    with get_engine().begin() as conn:
        conn.execute(
            insert(ListMembership.__table__),
            [{"list_id": clist.id, "contact_id": cid, "source": "manual", "added_at": utcnow()} for cid in ids],
        )
    return clist


# The Sandbox's own MARKETING template (its catalogue validates every send) and a mapping that fills it.
SPRING_SALE = [
    {"type": "HEADER", "format": "TEXT", "text": "Spring Sale: {{1}} off", "example": {"header_text": ["25%"]}},
    {
        "type": "BODY",
        "text": "Hi {{1}}, our Spring Sale is on! Use code {{2}} at checkout to save on everything until {{3}}.",
        "example": {"body_text": [["Maria", "SPRING25", "March 31"]]},
    },
    {"type": "FOOTER", "text": "Reply STOP to opt out"},
]
SPRING_MAPPING = {
    "header.1": {"source": "text", "value": "25%"},
    "body.1": {"source": "field", "key": "first_name"},
    "body.2": {"source": "text", "value": "SPRING25"},
    "body.3": {"source": "text", "value": "March 31"},
}


def _marketing(session: Session, channel: Channel):
    template = make_template(session, channel, name="spring_sale", components=SPRING_SALE)
    template.category = "MARKETING"
    session.add(template)
    session.commit()
    return template


def _summary(user, campaign_id: int) -> dict:
    with Session(get_engine()) as s:
        return campaign_summary(session=s, actor=user, campaign_id=campaign_id)


def _review(user, campaign_id: int) -> dict:
    with Session(get_engine()) as s:
        return draft_view(session=s, actor=user, campaign_id=campaign_id, step=3).review


def _finished(campaign_id: int, timeout: float):
    return wait_until(
        lambda: campaign_row(campaign_id).status in ("sent", "failed", "paused") and campaign_row(campaign_id),
        timeout=timeout,
        interval=0.5,
        message=f"campaign {campaign_id} finished",
    )


def _most_people_in_a_window(entries: list[dict], window_s: float) -> int:
    """The most distinct recipients the Sandbox accepted template messages for within any `window_s`."""
    sends = sorted((datetime.fromisoformat(e["at"]).timestamp(), e["to"]) for e in entries)
    return max(len({to for t, to in sends if end - window_s < t <= end}) for end, _ in sends)


@pytest.mark.timeout(240)
def test_daily_messaging_limit_holds_the_excess_until_the_window_frees(
    session, redis_client, redis_url, database_url, make_user, tmp_path, monkeypatch
):
    monkeypatch.setenv("HUBCAST_MESSAGING_LIMIT_WINDOW_S", str(WINDOW_S))  # this process and the worker
    monkeypatch.setenv("HUBCAST_CHANNEL_API_HOSTS", "http://127.0.0.1:*")  # the connection test may call the Sandbox
    admin, user = make_user("admin"), make_user("basic")
    extra = ("--messaging-limit", str(TIER), "--messaging-window-s", str(WINDOW_S))
    with run_sandbox(tmp_path / "sandbox", mps=200, extra=extra) as sb:
        main = make_channel(session, sb.url, mps=200)
        result = test_connection(session=session, actor=admin, channel_id=main.id)
        session.commit()
        assert result.ok, result.message
        session.refresh(main)
        assert main.messaging_limit_tier == "TIER_20"  # read from the phone number on connect
        second = Channel(
            name="Second number",
            kind="sandbox",
            status="connected",
            phone_number_id=PNID,
            business_account_id="another-waba",
            access_token=TOKEN,
            app_secret=SECRET,
            verify_token="v",
            api_base_url=sb.url,
            messages_per_second=200,
        )
        session.add(second)
        session.commit()
        # an account webhook (account_events) says both numbers share one business portfolio's limit
        record_tier(session, main, "TIER_20", "portfolio-1")
        record_tier(session, second, "TIER_20", "portfolio-1")
        session.commit()

        # the worker starts first, so that a loaded machine's slow start does not eat into the window
        worker = worker_process(tmp_path, database_url, redis_url, "worker")
        try:
            everyone = [number(i) for i in range(34)]
            make_list(session, everyone, name="Everyone")
            earlier = make_campaign(
                session,
                second,
                make_template(session, second),
                _sub_list(session, "Earlier", everyone[:8]),
                name="Earlier",
            )
            start_campaign(session=session, actor=user, campaign_id=earlier.id)
            assert _finished(earlier.id, 60).status == "sent"  # 8 people of the portfolio's 20

            big = make_campaign(
                session, main, make_template(session, main), _sub_list(session, "Big", everyone[4:]), name="Big"
            )
            review = _review(user, big.id)
            # 30 people, 4 of whom the portfolio messaged in the window: 26 new; 20 - 8 = 12 left
            assert (
                f"needs 26 new conversation(s); your number has 12 left in the next {WINDOW_S:g} s"
                in review["quota_note"]
            )
            assert review["quota_wait"].startswith("14 message(s) will wait for quota")

            start_campaign(session=session, actor=user, campaign_id=big.id)
            held = wait_until(
                lambda: (
                    (s := _summary(user, big.id))["quota_note"].startswith("14 waiting for quota")
                    and s["sent"] == 16
                    and s
                ),
                timeout=WINDOW_S * 0.6,
                interval=0.2,
                message="the excess shown waiting for quota",
            )
            assert held["status"] == "sending" and held["queued"] == 14
            assert sum(r.error_title == QUOTA_WAIT_TITLE for r in recipients(big.id)) == 14
            done = _finished(big.id, WINDOW_S * 4)
        finally:
            stop_process(worker)
        assert done.status == "sent", done.pause_reason
        log, entries = sb.log(), sb.entries()

    rows = recipients(big.id)
    assert len(rows) == 30 and all(r.status == "sent" and r.message_id and not r.error_title for r in rows)
    assert not log["rejected"], f"the Sandbox refused sends past its tier: {log['rejected']}"
    sent_to = Counter(e["to"].lstrip("+") for e in entries)
    assert sum(sent_to.values()) == 38  # 8 + 30: nobody got a campaign twice
    assert all(sent_to[n.lstrip("+")] == (2 if 4 <= i < 8 else 1) for i, n in enumerate(everyone))
    assert _most_people_in_a_window(entries, WINDOW_S) <= TIER
    first_send = min(datetime.fromisoformat(e["at"]).timestamp() for e in entries)
    big_wamids = {r.message_id for r in rows}
    big_times = sorted(datetime.fromisoformat(e["at"]).timestamp() for e in entries if e["wamid"] in big_wamids)
    assert big_times[-1] - first_send >= WINDOW_S - 1.0, "the excess waited for the window to free"


def test_frequency_cap_skips_people_another_campaign_just_reached(
    session, redis_client, redis_url, make_user, tmp_path, monkeypatch
):
    monkeypatch.setenv("HUBCAST_FREQUENCY_CAP_HOURS", "24")
    user = make_user("basic")
    with run_sandbox(tmp_path / "sandbox", mps=500) as sb:
        channel = make_channel(session, sb.url, mps=500)
        promo = _marketing(session, channel)
        everyone = [number(i) for i in range(20)]
        make_list(session, everyone, name="Everyone")
        first = make_campaign(
            session, channel, promo, _sub_list(session, "First", everyone[:10]), name="First", mapping=SPRING_MAPPING
        )
        start_campaign(session=session, actor=user, campaign_id=first.id)
        assert drive_until(redis_url, first.id, timeout=60).status == "sent"

        # a utility message is not marketing: the cap neither counts it nor applies to it
        notice = make_campaign(
            session,
            channel,
            make_template(session, channel),
            _sub_list(session, "Notice", everyone[15:]),
            name="Notice",
        )
        start_campaign(session=session, actor=user, campaign_id=notice.id)
        assert drive_until(redis_url, notice.id, timeout=60).status == "sent"

        second = make_campaign(
            session, channel, promo, _sub_list(session, "Second", everyone[5:]), name="Second", mapping=SPRING_MAPPING
        )
        review = _review(user, second.id)
        assert review["cap_note"].startswith("5 recipient(s) will be skipped by the frequency cap")

        start_campaign(session=session, actor=user, campaign_id=second.id)
        before = campaign_row(second.id)  # counted before anything is sent
        capped = sorted(r.address for r in recipients(second.id) if r.error_title == FREQUENCY_CAP_TITLE)
        assert capped == everyone[5:10]
        assert all(r.status == "skipped" for r in recipients(second.id) if r.address in capped)
        assert before.total_recipients == 15 and before.failed_count == 5 and before.sent_count == 0
        done = drive_until(redis_url, second.id, timeout=60)
        assert done.status == "sent" and done.sent_count == 10, done.pause_reason
        sent_to = Counter(e["to"].lstrip("+") for e in sb.entries())

    for i, n in enumerate(everyone):
        expected = (i < 10) + (i >= 10) + (i >= 15)  # first: 0-9; second: 10-19 (5-9 capped); notice: 15-19
        assert sent_to[n.lstrip("+")] == expected, (n, sent_to[n.lstrip("+")], expected)


@pytest.mark.timeout(180)
def test_131049_is_limited_by_whatsapp_and_a_later_campaign_tries_again(
    session, redis_client, redis_url, database_url, make_user, tmp_path, monkeypatch
):
    monkeypatch.setenv("HUBCAST_FREQUENCY_CAP_HOURS", "24")  # a limited person was not reached: not capped
    user = make_user("basic")
    limited = "+33612340001"  # the Sandbox answers #131049 (by status webhook) for numbers ending 0001
    people = [number(0), number(1), limited]
    with (
        http_api_process(tmp_path / "web", database_url, redis_url) as web,
        run_sandbox(
            tmp_path / "sandbox",
            mps=200,
            extra=(
                "--webhook-url",
                f"{web}/webhooks/whatsapp",
                "--failed-delay",
                "0.05,0.1",
                "--sent-delay",
                "0.05,0.1",
            ),
        ) as sb,
    ):
        channel = make_channel(session, sb.url, mps=200)
        promo = _marketing(session, channel)
        make_list(session, people, name="Everyone")
        first = make_campaign(
            session, channel, promo, _sub_list(session, "First", people), name="First", mapping=SPRING_MAPPING
        )
        start_campaign(session=session, actor=user, campaign_id=first.id)
        assert drive_until(redis_url, first.id, timeout=60).status == "sent"
        row = wait_until(
            lambda: next((r for r in recipients(first.id) if r.address == limited and r.status != "sent"), None),
            timeout=60,
            interval=0.2,
            message="the #131049 status webhook applied",
        )
        assert row.status == "limited" and row.error_code == 131049
        counts = wait_until(
            lambda: (c := campaign_row(first.id)).limited_count == 1 and c,
            timeout=30,
            interval=0.2,
            message="counters refreshed",
        )
        assert counts.failed_count == 0 and counts.limited_count == 1
        assert _summary(user, first.id)["limited"] == 1

        again = make_campaign(
            session, channel, promo, _sub_list(session, "Again", people), name="Again", mapping=SPRING_MAPPING
        )
        start_campaign(session=session, actor=user, campaign_id=again.id)
        by_address = {r.address: r for r in recipients(again.id)}
        assert by_address[number(0)].status == by_address[number(1)].status == "skipped"  # reached: capped
        assert by_address[limited].status == "queued"  # limited by WhatsApp: tried again
        assert drive_until(redis_url, again.id, timeout=60).status == "sent"
        sent_to = Counter(e["to"].lstrip("+") for e in sb.entries())

    assert sent_to[limited.lstrip("+")] == 2
    assert sent_to[number(0).lstrip("+")] == sent_to[number(1).lstrip("+")] == 1
