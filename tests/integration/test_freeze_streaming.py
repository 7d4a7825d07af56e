"""The streaming freeze (app/services/sending/freeze.py, issue 16): rows are frozen chunk by chunk, each
chunk committed with the campaign's cursor; the first batch is claimable and sent before the freeze of a
large audience ends; a freeze interrupted mid-chunk (a crash) resumes after its cursor with every
recipient exactly once; two freezers racing cannot both advance it; a campaign does not finish while
its freeze is incomplete. Killing a real worker process mid-freeze is tests/hardening/test_faults_freeze.py."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.db import get_engine
from app.models import Campaign, CampaignRecipient, Contact, ContactIdentity
from app.services.audiences import uploads
from app.services.audiences.csv_reader import check_csv
from app.services.campaigns import drafts as svc
from app.services.sending import freeze as fz
from app.services.sending.claims import claim_rows
from app.services.sending.lifecycle import cancel_campaign, start_campaign
from app.services.sending.progress import finish_if_done
from app.timeutil import utcnow
from tests.support.factories import (
    MAPPING,
    campaign_row,
    make_channel,
    make_list,
    make_sandbox_campaign,
    make_template,
    number,
    recipients,
)
from tests.support.processes import drive_until
from tests.support.sandbox import run_sandbox
from tests.support.wait import wait_until

GENERIC = {
    **MAPPING,
    "body.1": {"source": "field", "key": "custom.plan", "fallback": ""},
    "body.2": {"source": "field", "key": "first_name"},
}
CSV_MAPPING = {**MAPPING, "body.1": {"source": "column", "key": "First_Name"}}


def _stored(campaign_id: int) -> list[tuple]:
    R = CampaignRecipient
    with get_engine().connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                select(R.address, R.contact_id, R.variables, R.status, R.error_title)
                .where(R.campaign_id == campaign_id)
                .order_by(R.id)
            )
        ]


def _campaign(session, **fields) -> Campaign:
    campaign = Campaign(name="S", status="sending", **fields)
    session.add(campaign)
    session.commit()
    return campaign


@pytest.fixture()
def env(session, make_user):
    channel = make_channel(session, "http://127.0.0.1:9")
    return {"channel": channel, "template": make_template(session, channel), "user": make_user("advanced")}


def _list_fields(session, env, n: int, mapping=MAPPING) -> dict:
    clist = make_list(
        session,
        [number(i) for i in range(n)],
        first_name=lambda i: "" if i % 7 == 3 else f"Ana{i}",
        subscribed=lambda i: i % 5 != 2,
    )
    with session.get_bind().begin() as conn:  # a custom field for the generic reading, on some contacts
        conn.execute(
            update(Contact)
            .where(
                Contact.id == ContactIdentity.contact_id,
                ContactIdentity.address.in_([number(i) for i in range(0, n, 3)]),
            )
            .values(custom_fields={"plan": "gold"})
        )
    return dict(
        audience_kind="list",
        audience_list_id=clist.id,
        channel_id=env["channel"].id,
        template_id=env["template"].id,
        variable_mapping=mapping,
    )


def _csv_fields(session, env, tmp_path, n: int) -> dict:
    lines = ["phone,First_Name"] + [f"{number(i)},N{i}" for i in range(n)] + [f"{number(3)},dup", "bad,x"]
    (tmp_path / "a.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with open(tmp_path / "a.csv", "rb") as fh:
        stored = uploads.store_upload(fh, original_name="a.csv", purpose=svc.UPLOAD_PURPOSE)
    make_list(session, [number(5)], subscribed=lambda i: False, name="stopped")  # said STOP
    upload = svc.register_upload(
        session=session, actor=env["user"], path=str(stored.path), original_name="a.csv", check=check_csv(stored.path)
    )
    return dict(
        audience_kind="csv",
        audience_upload_id=upload.id,
        channel_id=env["channel"].id,
        template_id=env["template"].id,
        variable_mapping=CSV_MAPPING,
    )


def _reference(session, fields: dict) -> list[tuple]:
    """What the former up-front freeze stores for the same audience."""
    campaign = _campaign(session, **fields)
    fz.freeze_audience(session, campaign, utcnow())
    session.commit()
    return _stored(campaign.id)


@pytest.mark.parametrize("kind", ["list-fast", "list-generic", "csv"])
def test_streaming_freeze_stores_what_the_up_front_freeze_stores(session, env, tmp_path, kind):
    if kind == "csv":
        fields = _csv_fields(session, env, tmp_path, 23)
    else:
        fields = _list_fields(session, env, 23, MAPPING if kind == "list-fast" else GENERIC)
    expected = _reference(session, fields)
    campaign = _campaign(session, **fields)
    count, done = fz.freeze_first_chunk(session, campaign, utcnow(), 4)
    session.commit()
    assert (count, done) == (4, False) and campaign_row(campaign.id).freezing
    run = fz.continue_freeze(get_engine(), campaign.id, chunk=3)
    assert run.done and not run.lost_lease and run.chunks >= 5
    assert _stored(campaign.id) == expected  # same rows, same order (ids follow the audience order)
    after = campaign_row(campaign.id)
    assert not after.freezing and after.freeze_heartbeat_at is None


def test_a_small_audience_is_frozen_whole_when_send_returns(session, redis_client, make_user, tmp_path):
    user = make_user("basic")
    with run_sandbox(tmp_path / "sandbox") as sb:
        campaign = make_sandbox_campaign(session, sb, 5)
        start_campaign(session=session, actor=user, campaign_id=campaign.id)
    row = campaign_row(campaign.id)
    assert not row.freezing and row.total_recipients == 5 and len(recipients(campaign.id)) == 5


def test_a_freeze_interrupted_mid_chunk_resumes_with_every_recipient_once(session, env, monkeypatch):
    """The process freezing dies while writing its third chunk: that chunk never commits; the next
    freezer takes the lease once it expires and resumes after the cursor: nobody twice, nobody missing."""
    fields = _list_fields(session, env, 40)
    expected = _reference(session, fields)
    campaign = _campaign(session, **fields)
    fz.freeze_first_chunk(session, campaign, utcnow(), 5)
    session.commit()
    assert fz.take_freeze_lease(get_engine(), campaign.id, lease_s=30)
    assert not fz.take_freeze_lease(get_engine(), campaign.id, lease_s=30), "the lease is held"

    real_write, calls = fz._write, []

    def dying_write(session_, campaign_id, rows, now, use_copy, **kw):
        calls.append(len(rows))
        real_write(session_, campaign_id, rows, now, use_copy, **kw)  # the rows are written ...
        if len(calls) == 3:
            raise SystemExit("killed")  # ... and the process dies before the chunk commits

    monkeypatch.setattr(fz, "_write", dying_write)
    with pytest.raises(SystemExit):
        fz.continue_freeze(get_engine(), campaign.id, chunk=4)
    monkeypatch.setattr(fz, "_write", real_write)
    row = campaign_row(campaign.id)
    assert row.freezing and len(_stored(campaign.id)) == 5 + 2 * 4, "the third chunk was rolled back"
    cursor = row.freeze_cursor

    assert not fz.take_freeze_lease(get_engine(), campaign.id, lease_s=30), "its lease has not expired yet"
    assert fz.take_freeze_lease(get_engine(), campaign.id, lease_s=30, now=utcnow() + timedelta(seconds=31))
    run = fz.continue_freeze(get_engine(), campaign.id, chunk=4)
    assert run.done
    assert _stored(campaign.id) == expected
    assert campaign_row(campaign.id).freeze_cursor > cursor


def test_a_chunk_committed_twice_is_not_duplicated_and_a_racing_freezer_stops(session, env):
    """Two freezers started from the same cursor (a lease taken over too early): the first commits its
    chunk; the second's chunk finds the cursor moved, is rolled back, and that freezer stops."""
    fields = _list_fields(session, env, 30)
    expected = _reference(session, fields)
    campaign = _campaign(session, **fields)
    fz.freeze_first_chunk(session, campaign, utcnow(), 3)
    session.commit()
    late = threading.Event()
    first_done = threading.Event()
    results = {}

    def slow_on_chunk(_n):
        first_done.set()

    # Freezer A freezes one chunk and stops; freezer B was started from the same cursor before A committed.
    stop_a = threading.Event()
    a = threading.Thread(
        target=lambda: results.__setitem__(
            "a",
            fz.continue_freeze(
                get_engine(), campaign.id, chunk=5, stop=stop_a, on_chunk=lambda n: (stop_a.set(), slow_on_chunk(n))
            ),
        )
    )
    real_next = fz._ChunkReader.next_chunk

    def next_chunk_waiting(self, size):  # B read its chunk before A committed, and writes it after
        out = real_next(self, size)
        if threading.current_thread().name == "B" and not late.is_set():
            late.set()
            first_done.wait(10)
        return out

    fz._ChunkReader.next_chunk = next_chunk_waiting
    try:
        b = threading.Thread(
            name="B", target=lambda: results.__setitem__("b", fz.continue_freeze(get_engine(), campaign.id, chunk=5))
        )
        b.start()
        wait_until(late.is_set, 10, interval=0.01, message="B read its chunk")
        a.start()
        a.join(20)
        b.join(20)
    finally:
        fz._ChunkReader.next_chunk = real_next
    assert results["a"].chunks == 1 and not results["a"].done
    assert results["b"].lost_lease and results["b"].chunks == 0
    assert len(_stored(campaign.id)) == 3 + 5
    fz.continue_freeze(get_engine(), campaign.id, chunk=5)
    assert _stored(campaign.id) == expected


def test_a_campaign_does_not_finish_while_its_freeze_is_incomplete(session, env):
    fields = _list_fields(session, env, 12)
    campaign = _campaign(session, **fields)
    fz.freeze_first_chunk(session, campaign, utcnow(), 4)
    session.commit()
    with get_engine().begin() as conn:  # every frozen row is done
        conn.execute(
            update(CampaignRecipient).where(CampaignRecipient.campaign_id == campaign.id).values(status="sent")
        )
    assert not finish_if_done(session, campaign.id)
    session.commit()
    assert campaign_row(campaign.id).status == "sending"
    fz.continue_freeze(get_engine(), campaign.id, chunk=100)
    with get_engine().begin() as conn:
        conn.execute(
            update(CampaignRecipient).where(CampaignRecipient.campaign_id == campaign.id).values(status="sent")
        )
    assert finish_if_done(session, campaign.id)
    session.commit()
    assert campaign_row(campaign.id).status == "sent"


def test_the_first_batch_is_claimable_before_the_freeze_ends(session, redis_client, make_user, tmp_path, monkeypatch):
    monkeypatch.setenv("HUBCAST_SEND_FREEZE_FIRST_CHUNK", "50")
    user = make_user("basic")
    with run_sandbox(tmp_path / "sandbox") as sb:
        campaign = make_sandbox_campaign(session, sb, 400)
        start_campaign(session=session, actor=user, campaign_id=campaign.id)
        redis_client.flushdb()  # no job runs: we claim as a worker would
        row = campaign_row(campaign.id)
        assert row.status == "sending" and row.freezing and len(recipients(campaign.id)) == 50
        claimed = claim_rows(get_engine(), campaign.id, 500, utcnow())
        assert [c.address for c in claimed] == [number(i) for i in range(50)]
        assert campaign_row(campaign.id).freezing, "claimed while the rest is still to be frozen"


def test_the_first_message_leaves_before_the_freeze_of_a_large_audience_ends(
    session, redis_client, redis_url, make_user, tmp_path, monkeypatch
):
    """Ordering, not timing: the freezer is held at its second chunk until the Sandbox has received a
    message. Were sending to wait for the freeze, the Sandbox would get nothing and the hold would time
    out; instead the first message arrives first, then the freeze ends and everyone gets exactly one."""
    monkeypatch.setenv("HUBCAST_SEND_FREEZE_FIRST_CHUNK", "20")
    monkeypatch.setenv("HUBCAST_SEND_FREEZE_CHUNK", "100")
    n = 600
    user = make_user("basic")
    events: list[tuple[str, int]] = []
    real_write = fz._write

    with run_sandbox(tmp_path / "sandbox", mps=0) as sb:

        def held_write(session_, campaign_id, rows, now, use_copy, **kw):
            if threading.current_thread().name.startswith("freeze-") and not events:
                wait_until(
                    lambda: sb.log()["total"] >= 1, 30, interval=0.02, message="a message before the freeze ends"
                )
                events.append(("first message seen by the freezer", sb.log()["total"]))
            real_write(session_, campaign_id, rows, now, use_copy, **kw)

        monkeypatch.setattr(fz, "_write", held_write)
        campaign = make_sandbox_campaign(session, sb, n)
        start_campaign(session=session, actor=user, campaign_id=campaign.id)
        assert campaign_row(campaign.id).freezing
        done = drive_until(redis_url, campaign.id, timeout=120)
        log = sb.log()
    assert events and events[0][1] >= 1
    assert done.status == "sent" and not done.freezing and done.total_recipients == n
    rows = recipients(campaign.id)
    assert sorted(r.address for r in rows) == sorted(number(i) for i in range(n))
    assert {r.status for r in rows} == {"sent"}
    assert log["total"] == n and not log["duplicates"]


def test_cancel_stops_a_streaming_freeze(session, env, make_user):
    user = make_user("basic")
    fields = _list_fields(session, env, 30)
    campaign = _campaign(session, **fields)
    fz.freeze_first_chunk(session, campaign, utcnow(), 5)
    session.commit()
    cancel_campaign(session=session, actor=user, campaign_id=campaign.id)
    row = campaign_row(campaign.id)
    assert row.status == "cancelled" and not row.freezing
    run = fz.continue_freeze(get_engine(), campaign.id, chunk=5)
    assert run.chunks == 0 and len(_stored(campaign.id)) == 5
