"""Campaign insight (issue 15) against known recipient rows on the real database: the funnel, the
timeline (per minute after sending, per second over the live window), failure reasons with hints,
countries from the numbers, replies matched by context id (only through the campaign's channel) with
per-button counts, and "Send again to…" (the right numbers, frozen in a file, each once)."""

from __future__ import annotations

import csv
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.domain import permissions as perm
from app.models import AudienceUpload, Campaign, CampaignRecipient, Channel
from app.services.audiences import uploads
from app.services.audiences.csv_reader import check_csv
from app.services.campaigns import drafts, insight, replies, send_again
from app.services.campaigns.results import CampaignNotFound
from app.services.inbound.opt_out import record_inbound
from app.services.sending import progress as campaign_progress
from app.services.sending.lifecycle import start_campaign
from app.timeutil import utcnow
from app.whatsapp.webhooks import InboundMessage as ParsedInbound
from tests.support.factories import MAPPING, make_channel, make_template

T0 = utcnow().replace(second=0, microsecond=0) - timedelta(hours=30)


def _recipient(cid, i, address, status, *, sent=None, delivered=None, read=None, failed=None, code=None, title=""):
    return CampaignRecipient(
        campaign_id=cid,
        address=address,
        status=status,
        message_id=f"wamid.in.{cid}.{i}" if status != "queued" else None,
        variables={"body.1": f"Name{i}", "body.2": "#48213", "body.3": "Friday"},
        error_code=code,
        error_title=title,
        sent_at=sent,
        delivered_at=delivered,
        read_at=read,
        failed_at=failed,
        updated_at=read or delivered or failed or sent or T0,
    )


@pytest.fixture()
def seeded(session, make_user):
    channel = make_channel(session, "http://127.0.0.1:9")
    other = Channel(name="Other channel", kind="sandbox", phone_number_id="other", status="connected")
    session.add(other)
    session.commit()
    template = make_template(session, channel)
    campaign = Campaign(
        name="Autumn sale",
        status="completed",
        channel_id=channel.id,
        template_id=template.id,
        variable_mapping=dict(MAPPING),
        audience_kind="list",
    )
    session.add(campaign)
    session.commit()
    cid = campaign.id
    m = timedelta(minutes=1)
    rows = [
        # France: 4 recipients, 3 delivered (2 read), 1 held back (131049)
        _recipient(cid, 0, "+33612345670", "read", sent=T0, delivered=T0 + 0.2 * m, read=T0 + 2 * m),
        _recipient(cid, 1, "+33612345671", "read", sent=T0, delivered=T0 + 0.5 * m, read=T0 + 2.5 * m),
        _recipient(cid, 2, "+33612345672", "delivered", sent=T0 + m, delivered=T0 + 1.2 * m),
        # held back by Meta's per-user marketing limit: its own status, a reason worth sending again for
        _recipient(cid, 3, "+33612345673", "limited", sent=T0 + m, failed=T0 + 1.5 * m, code=131049, title="Healthy"),
        # United Kingdom: 3 recipients, 1 sent, 2 failed not retryable (131026)
        _recipient(cid, 4, "+447700900101", "sent", sent=T0 + m),
        _recipient(cid, 5, "+447700900102", "failed", failed=T0 + m, code=131026, title="Message undeliverable"),
        _recipient(cid, 6, "+447700900103", "failed", failed=T0 + 3 * m, code=131026, title="Message undeliverable"),
        # United States: 1 queued (never sent)
        _recipient(cid, 7, "+12025550123", "queued"),
    ]
    session.add_all(rows)
    session.commit()
    campaign_progress.refresh_counters(session, cid)
    session.commit()

    def inbound(n, rid, *, kind="text", text="", payload="", via=channel.id):
        record_inbound(
            session=session,
            message=ParsedInbound(
                message_id=f"wamid.reply.{n}",
                from_wa_id=rows[rid].address.lstrip("+"),
                timestamp=T0 + timedelta(minutes=10 + n),
                kind=kind,
                text=text,
                payload=payload,
                context_message_id=rows[rid].message_id,
            ),
            channel_id=via,
        )

    inbound(1, 0, text="Yes I would like to know more about the autumn sale please, tell me the sizes you have")
    inbound(2, 0, kind="button", text="Yes please", payload="YES")
    inbound(3, 1, kind="button", text="Yes please", payload="YES")
    inbound(4, 2, kind="button", text="Stop promotions", payload="STOP_PROMO")
    inbound(5, 4, text="forged through another channel", via=other.id)  # must not count
    session.commit()
    admin, basic = make_user("admin"), make_user("basic")
    session.refresh(campaign)
    return {"campaign": campaign, "rows": rows, "admin": admin, "basic": basic, "channel": channel}


def test_funnel_counts_each_stage_with_rates(session, seeded):
    funnel = insight.funnel(seeded["campaign"])
    assert [(s["stage"], s["value"]) for s in funnel] == [
        ("Recipients", 8),
        ("Sent", 4),
        ("Delivered", 3),
        ("Read", 2),
        ("Replied", 3),  # recipients 0, 1 and 2 replied through the campaign's channel; the forged one did not count
    ]
    assert funnel[2]["of_total"] == "37.5%" and funnel[2]["of_step"] == "75.0%"


def test_timeline_after_sending_covers_the_whole_campaign_in_buckets_that_fit(session, seeded):
    tl = insight.timeline(session=session, actor=seeded["basic"], campaign_id=seeded["campaign"].id)
    # 3 minutes from the first send to the last status: 5-second buckets (at most MAX_POINTS points).
    assert tl["unit"] == "5 seconds"
    points = tl["points"]
    assert len(points) == 37 and points[0]["t"] == T0.strftime("%H:%M:%S")  # quiet buckets included

    def at(seconds: int) -> dict:
        label = (T0 + timedelta(seconds=seconds)).strftime("%H:%M:%S")
        return next(p for p in points if p["t"] == label)

    assert at(0)["sent"] == 2 and at(60)["sent"] == 3
    assert at(10)["delivered"] == 1 and at(30)["delivered"] == 1 and at(70)["delivered"] == 1
    assert at(120)["read"] == 1 and at(150)["read"] == 1
    assert at(60)["failed"] == 1 and at(90)["failed"] == 1 and at(180)["failed"] == 1
    totals = {k: sum(p[k] for p in points) for k in ("sent", "delivered", "read", "failed")}
    assert totals == {"sent": 5, "delivered": 3, "read": 2, "failed": 3}


def test_timeline_of_a_long_campaign_is_per_minute_or_wider(session, seeded):
    cid = seeded["campaign"].id
    late = T0 + timedelta(hours=3)
    session.add(_recipient(cid, 30, "+33612345699", "delivered", sent=late, delivered=late + timedelta(seconds=5)))
    session.commit()
    tl = insight.timeline(session=session, actor=seeded["basic"], campaign_id=cid)
    assert tl["unit"] == "5 minutes" and len(tl["points"]) <= insight.MAX_POINTS + 1
    assert sum(p["sent"] for p in tl["points"]) == 6


def test_live_timeline_is_per_second_and_reads_only_the_recent_window(session, seeded):
    cid = seeded["campaign"].id
    now = utcnow()
    recent = _recipient(cid, 20, "+33612345690", "delivered", sent=now - timedelta(seconds=5), delivered=now)
    session.add(recent)
    session.commit()
    tl = insight.timeline(session=session, actor=seeded["basic"], campaign_id=cid, live=True)
    assert tl["unit"] == "second"
    assert insight.LIVE_WINDOW_S - 2 <= len(tl["points"]) <= insight.LIVE_WINDOW_S + 1
    assert sum(p["sent"] for p in tl["points"]) == 1  # the old rows (30 h ago) are outside the window
    assert sum(p["delivered"] for p in tl["points"]) == 1


def test_failure_reasons_name_the_code_count_and_say_what_to_do(session, seeded):
    reasons = insight.failure_reasons(session=session, actor=seeded["basic"], campaign_id=seeded["campaign"].id)
    assert [(r["code"], r["recipients"]) for r in reasons] == [("131026", 2), ("131049", 1)]
    assert reasons[0]["title"] == "Message undeliverable"
    assert "not on WhatsApp" in reasons[0]["hint"]
    assert reasons[0]["share"] == "66.7%" and reasons[0]["resend_later"] == ""
    assert reasons[1]["resend_later"] == "yes"


def test_countries_from_the_numbers_with_delivery_and_read_rates(session, seeded):
    rows = insight.countries(session=session, actor=seeded["basic"], campaign_id=seeded["campaign"].id)
    by_code = {r["code"]: r for r in rows}
    assert [r["code"] for r in rows] == ["FR", "GB", "US"]
    assert by_code["FR"]["country"] == "France" and by_code["FR"]["recipients"] == 4
    assert (by_code["FR"]["delivered_rate"], by_code["FR"]["read_rate"]) == ("75.0%", "50.0%")
    assert (by_code["GB"]["recipients"], by_code["GB"]["failed"], by_code["GB"]["delivered_rate"]) == (3, 2, "0.0%")
    assert by_code["FR"]["failed"] == 1  # held back counts with failed
    assert by_code["US"]["recipients"] == 1


def test_replies_are_matched_by_context_and_counted_per_button(session, seeded):
    page = replies.replies_page(session=session, actor=seeded["basic"], campaign_id=seeded["campaign"].id)
    assert page.total == 4  # the reply through another channel is not this campaign's
    assert [r["number"] for r in page.rows] == ["+33612345672", "+33612345671", "+33612345670", "+33612345670"]
    text = page.rows[3]["text"]
    assert text.startswith("Yes I would like") and text.endswith("…") and len(text.split()) == 13
    buttons = replies.button_counts(session=session, actor=seeded["basic"], campaign_id=seeded["campaign"].id)
    assert buttons == [
        {"payload": "YES", "label": "Yes please", "recipients": 2},
        {"payload": "STOP_PROMO", "label": "Stop promotions", "recipients": 1},
    ]


def _file_numbers(session, draft) -> list[dict]:
    upload = session.get(AudienceUpload, draft.audience_upload_id)
    with open(upload.stored_path, encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize(
    ("kind", "extra", "expected"),
    [
        ("failed", {}, ["+33612345673"]),
        ("not_read", {"hours": 24}, ["+33612345672", "+447700900101"]),
        ("replied", {}, ["+33612345670", "+33612345671", "+33612345672"]),
        ("button", {"button": "YES"}, ["+33612345670", "+33612345671"]),
    ],
)
def test_send_again_makes_a_new_draft_with_a_frozen_copy_of_the_right_recipients(
    session, seeded, kind, extra, expected
):
    source = seeded["campaign"]
    args = {"session": session, "actor": seeded["admin"], "campaign_id": source.id, "kind": kind, **extra}
    assert send_again.count(**args) == len(expected)
    draft = send_again.create(**args)
    session.commit()
    assert draft.id != source.id and draft.status == "draft" and draft.wizard_step == 2
    if kind == "button":
        assert draft.name == "Autumn sale · Clicked “Yes please”"  # the button's text, not its payload
    assert (draft.channel_id, draft.template_id, draft.audience_kind) == (source.channel_id, source.template_id, "csv")
    rows = _file_numbers(session, draft)
    assert sorted(r["phone"] for r in rows) == expected  # each once: a recipient with two replies too
    # The values each recipient was sent travel with them, mapped to the template's variables.
    assert {r["body_1"] for r in rows} <= {f"Name{i}" for i in range(8)}
    assert draft.variable_mapping["body.1"] == {"source": "column", "key": "body_1", "fallback": ""}
    # Frozen: a reply arriving later does not change the new draft's audience.
    record_inbound(
        session=session,
        message=ParsedInbound(
            message_id=f"wamid.late.{kind}",
            from_wa_id="447700900101",
            timestamp=utcnow(),
            kind="button",
            text="Yes please",
            payload="YES",
            context_message_id=seeded["rows"][4].message_id,
        ),
        channel_id=seeded["channel"].id,
    )
    session.commit()
    assert sorted(r["phone"] for r in _file_numbers(session, draft)) == expected
    original = session.execute(select(CampaignRecipient).where(CampaignRecipient.campaign_id == source.id)).all()
    assert len(original) == 8  # the original campaign is untouched


def test_send_again_refuses_clearly_and_creates_nothing(session, seeded):
    source = seeded["campaign"]
    before = session.execute(select(Campaign.id)).all()
    base = {"session": session, "campaign_id": source.id}
    with pytest.raises(send_again.SendAgainError, match="No recipient"):
        send_again.create(**base, actor=seeded["admin"], kind="button", button="NOBODY")
    with pytest.raises(send_again.SendAgainError, match="hours"):
        send_again.create(**base, actor=seeded["admin"], kind="not_read", hours="soon")
    with pytest.raises(send_again.SendAgainError, match="Choose who"):
        send_again.create(**base, actor=seeded["admin"], kind="everyone")
    with pytest.raises(CampaignNotFound):
        send_again.create(session=session, actor=seeded["admin"], campaign_id=999999, kind="failed")
    session.rollback()
    assert session.execute(select(Campaign.id)).all() == before
    assert perm.can("basic", perm.CAMPAIGNS_VIEW)


def test_a_basic_user_sends_again_to_a_frozen_copy_and_sends_it(session, seeded, redis_client):
    """SPEC S1: the copy is a subset of an existing campaign's recipients, not data the user brings in."""
    basic, source = seeded["basic"], seeded["campaign"]
    draft = send_again.create(session=session, actor=basic, campaign_id=source.id, kind="replied")
    session.commit()
    expected = ["+33612345670", "+33612345671", "+33612345672"]
    upload = session.get(AudienceUpload, draft.audience_upload_id)
    assert (upload.derived_from_campaign_id, upload.uploaded_by_id) == (source.id, basic.id)
    assert sorted(r["phone"] for r in _file_numbers(session, draft)) == expected
    # Back to step 1 and on again, as the wizard saves it: the draft keeps its derived file.
    drafts.update_setup(
        session=session,
        actor=basic,
        campaign_id=draft.id,
        name=draft.name,
        audience_kind="csv",
        audience_ref=upload.id,
        channel_id=source.channel_id,
    )
    drafts.set_wizard_step(session=session, actor=basic, campaign_id=draft.id, step=3)
    session.commit()
    assert drafts.step_problems(session=session, actor=basic, campaign_id=draft.id, step=3) == []  # Review: Send
    start_campaign(session=session, actor=basic, campaign_id=draft.id)
    assert session.get(Campaign, draft.id).status == "sending"
    frozen = session.execute(select(CampaignRecipient.address).where(CampaignRecipient.campaign_id == draft.id))
    assert sorted(frozen.scalars()) == expected


def test_a_basic_user_still_cannot_bring_in_or_swap_a_file(session, seeded, make_user, tmp_path):
    basic, source = seeded["basic"], seeded["campaign"]
    draft = send_again.create(session=session, actor=basic, campaign_id=source.id, kind="failed")
    other_derived = send_again.create(session=session, actor=seeded["admin"], campaign_id=source.id, kind="replied")
    session.commit()
    (tmp_path / "mine.csv").write_bytes(b"phone\n+33612345678\n")
    with open(tmp_path / "mine.csv", "rb") as fh:
        stored = uploads.store_upload(fh, original_name="mine.csv", purpose=drafts.UPLOAD_PURPOSE)
    check = check_csv(stored.path)
    with pytest.raises(perm.PermissionDenied):  # uploading a file of one's own
        drafts.register_upload(session=session, actor=basic, path=str(stored.path), original_name="x", check=check)
    theirs = drafts.register_upload(
        session=session, actor=make_user("advanced"), path=str(stored.path), original_name="x", check=check
    )
    session.commit()
    kept = draft.audience_upload_id
    for swapped in (theirs.id, other_derived.audience_upload_id):  # another file, even another derived one
        with pytest.raises(perm.PermissionDenied):
            drafts.update_setup(
                session=session,
                actor=basic,
                campaign_id=draft.id,
                name=draft.name,
                audience_kind="csv",
                audience_ref=swapped,
                channel_id=source.channel_id,
            )
        session.rollback()
    assert session.get(Campaign, draft.id).audience_upload_id == kept
