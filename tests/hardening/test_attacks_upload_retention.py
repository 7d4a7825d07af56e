"""Issue 13, item 13: uploaded audience CSVs (phone numbers and whatever columns people put beside them) do not
stay on the server for ever, and the parallel CSV check leaves no copy of them in the system temp dir.

- Files of campaigns sent, cancelled or deleted are deleted once the retention has passed since (the setting
  is in days; seconds here). Files a draft, a scheduled or a sending campaign still needs are kept.
- A parallel check of a big file writes its part files in a private folder under the upload dir, never in
  TMPDIR, and removes them: TMPDIR is a fresh folder here, watched while the check runs.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path

import pytest
from sqlmodel import select

from app.models import AudienceUpload, Campaign
from app.services.audiences import uploads
from app.services.audiences.csv_reader import check_csv
from app.services.campaigns import drafts
from app.services.sending import lifecycle
from app.settings import reset_settings_cache
from tests.support.factories import MAPPING, make_channel, make_template
from tests.support.hardening import record
from tests.support.processes import drive_until
from tests.support.sandbox import run_sandbox
from tests.support.wait import wait_until

CSV_MAPPING = {**MAPPING, "body.1": {"source": "column", "key": "first_name"}}
RETENTION_S = 20  # long enough that the first tick, right after the campaigns end, is within it on a busy machine


def _csv_campaign(session, user, channel, template, name: str, rows: int = 3) -> tuple[Campaign, Path]:
    body = "phone,first_name\n" + "".join(f"+3361234{i:04d},P{i}\n" for i in range(rows))
    source = Path(tempfile.gettempdir()) / f"{name}.csv"
    source.write_text(body)
    try:
        with open(source, "rb") as fh:
            stored = uploads.store_upload(fh, original_name=f"{name}.csv", purpose=drafts.UPLOAD_PURPOSE)
    finally:
        source.unlink()
    upload = drafts.register_upload(
        session=session, actor=user, path=str(stored.path), original_name=f"{name}.csv", check=check_csv(stored.path)
    )
    session.flush()
    campaign = Campaign(
        name=name,
        audience_kind="csv",
        audience_upload_id=upload.id,
        channel_id=channel.id,
        template_id=template.id,
        variable_mapping=CSV_MAPPING,
        created_by_id=user.id,
    )
    session.add(campaign)
    session.commit()
    return campaign, stored.path


def test_csv_files_are_deleted_after_their_campaign_ended_and_the_retention_passed(
    session, make_user, redis_client, redis_url, tmp_path, monkeypatch
):
    from workers.jobs import periodic_tick

    monkeypatch.setenv("HUBCAST_UPLOAD_RETENTION_DAYS", str(RETENTION_S / 86400))
    reset_settings_cache()
    advanced = make_user("advanced")
    with run_sandbox(tmp_path / "sandbox") as sandbox:
        channel = make_channel(session, sandbox.url)
        template = make_template(session, channel)
        sent, sent_file = _csv_campaign(session, advanced, channel, template, "sent")
        cancelled, cancelled_file = _csv_campaign(session, advanced, channel, template, "cancelled")
        deleted, deleted_file = _csv_campaign(session, advanced, channel, template, "deleted")
        draft, draft_file = _csv_campaign(session, advanced, channel, template, "still-a-draft")
        shared, shared_file = _csv_campaign(session, advanced, channel, template, "shared")
        copy = drafts.duplicate_campaign(session=session, actor=advanced, campaign_id=shared.id)  # a draft uses it
        session.commit()

        lifecycle.start_campaign(session=session, actor=advanced, campaign_id=sent.id)
        lifecycle.start_campaign(session=session, actor=advanced, campaign_id=shared.id)
        drive_until(redis_url, sent.id, statuses=("sent",))
        drive_until(redis_url, shared.id, statuses=("sent",))
        in_an_hour = time.strftime("%Y-%m-%d %H:%M", time.gmtime(time.time() + 3600))
        lifecycle.schedule_campaign(
            session=session, actor=advanced, campaign_id=cancelled.id, tz="UTC", local_dt=in_an_hour
        )
        lifecycle.cancel_campaign(session=session, actor=advanced, campaign_id=cancelled.id)
        drafts.delete_draft(session=session, actor=advanced, campaign_id=deleted.id)
        session.commit()
    ended_at = time.monotonic()
    ended = {"sent": sent_file, "cancelled": cancelled_file, "deleted": deleted_file}
    kept = {"draft": draft_file, "shared with a draft copy": shared_file}

    periodic_tick()  # right after the end: within the retention, nothing of a sent or cancelled campaign goes
    # (a deleted draft's file has no campaign left: it goes once it is older than the retention, maybe already)
    within_retention = {name: path.exists() for name, path in {**ended, **kept}.items() if name != "deleted"}

    def all_ended_gone():
        periodic_tick()  # what every worker runs every few seconds
        return all(not p.exists() for p in ended.values()) or None

    try:
        wait_until(all_ended_gone, RETENTION_S + 40, interval=0.5, message="the ended campaigns' CSV files deleted")
        gone_after_s = round(time.monotonic() - ended_at, 1)
    except AssertionError:
        gone_after_s = None
    after = {name: path.exists() for name, path in {**ended, **kept}.items()}
    session.expire_all()
    purged = {
        u.original_filename: getattr(u, "purged_at", None) is not None
        for u in session.exec(select(AudienceUpload)).all()
    }
    reset_settings_cache()
    ok = (
        all(within_retention.values())
        and gone_after_s is not None
        and not any(after[n] for n in ended)
        and all(after[n] for n in kept)
    )
    record(
        "handlers",
        "uploaded CSVs of sent / cancelled / deleted campaigns deleted after the retention",
        ok=ok,
        checked=len(ended) + len(kept),
        refused_correctly=sum(not after[n] for n in ended),
        allowed_correctly=sum(after[n] for n in kept),
        retention_s=RETENTION_S,
        gone_after_s=gone_after_s,
    )
    assert all(within_retention.values()), f"deleted before the retention passed: {within_retention}"
    assert gone_after_s is not None, f"still on disk after the retention: {after}"
    assert not any(after[n] for n in ended), after
    assert all(after[n] for n in kept), f"a file a draft still needs was deleted: {after}"
    assert purged["sent.csv"] and purged["cancelled.csv"] and purged["deleted.csv"], purged
    assert not purged["still-a-draft.csv"] and not purged["shared.csv"], purged
    assert copy.status == "draft"


def test_a_parallel_csv_check_leaves_nothing_in_the_system_temp_dir(database_url, tmp_path, monkeypatch):
    from app.services.audiences import csv_parallel

    if csv_parallel.workers() < 2:
        pytest.skip("the parallel check needs two cores")
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(system_tmp))
    monkeypatch.setattr(tempfile, "tempdir", None)  # forget the cached temp dir: TMPDIR is read again
    assert tempfile.gettempdir() == str(system_tmp)
    big = tmp_path / "big.csv"  # outside TMPDIR: the uploaded file itself lives in the private upload dir
    with open(big, "w") as fh:
        fh.write("phone,first_name\n")
        for i in range(260_000):
            fh.write(f"+336{i:08d},Name{i}\n")
    assert big.stat().st_size > csv_parallel.PARALLEL_MIN_BYTES

    seen: set[str] = set()
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            seen.update(os.listdir(system_tmp))
            time.sleep(0.002)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        check = csv_parallel.check_csv_parallel(big)
    finally:
        stop.set()
        watcher.join()
    left = os.listdir(system_tmp)
    scratch = Path(os.environ["HUBCAST_DATA_DIR"]) / "uploads" / "tmp"
    scratch_left = sorted(str(p.relative_to(scratch)) for p in scratch.rglob("*")) if scratch.exists() else []
    ok = check is not None and not seen and not left and not scratch_left
    record(
        "handlers",
        "parallel CSV check: files in the system temp dir (during / after)",
        ok=ok,
        checked=2,
        refused_correctly=int(not seen) + int(not left),
        allowed_correctly=int(check is not None),
        seen_in_tmpdir=sorted(seen)[:5],
        left_in_scratch=scratch_left[:5],
    )
    assert check is not None and check.valid == 260_000, "the file should have been checked in parallel"
    assert not seen, f"part files written to the system temp dir: {sorted(seen)[:5]}"
    assert not left and not scratch_left, (left, scratch_left)
