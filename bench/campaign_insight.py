"""Benchmark: the campaign page's insight queries (issue 15) on one campaign of N recipients (SQLite).

Builds a fresh SQLite database in a temporary folder (migrated to head), one campaign of N recipients sent
over 30 minutes (55% read, 25% delivered, 15% sent, 5% failed, numbers in 6 countries), the last 2 minutes
still "sending" so the live window holds ~N/15 rows, 2% of the readers replied. Times:
- the live tick (`insight(everything=False)`: counters + the per-second timeline over the last 2 minutes),
  with migration 0010's index on (campaign_id, updated_at) and, as the baseline in the same run, without it;
- the full read (`insight(everything=True)`: timeline, failure reasons, countries, replies), which the page
  makes on load and at most every 2 s while live: while sending (the live timeline) and once sent (the
  whole-campaign timeline), with each part's own time.
Medians of --runs; prints a table and appends it to bench/results/campaign_insight.md with the load average.

    .venv/bin/python bench/campaign_insight.py --recipients 200000
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HUBCAST_ENV", "test")
os.environ.setdefault("HUBCAST_SECRET_KEY", "bench-secret-key-that-is-long-enough-0123456789")

from sqlalchemy import insert, text  # noqa: E402
from sqlmodel import Session, select  # noqa: E402

from app.db import make_engine  # noqa: E402
from app.migrate import upgrade_to_head  # noqa: E402
from app.models import Campaign, CampaignRecipient, Channel, InboundMessage, User  # noqa: E402
from app.services.campaigns import insight, replies  # noqa: E402
from app.services.sending import progress as campaign_progress  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "campaign_insight.md"
PREFIXES = ("+33612", "+4915112", "+447700", "+1202555", "+34612", "+39312")


def build(engine, n: int) -> int:
    rng = random.Random(15)
    now = datetime.now(UTC)
    start = now - timedelta(minutes=30)
    with Session(engine) as s:
        s.add(User(email="bench@example.com", password_hash="x", role="basic"))
        channel = Channel(name="Bench", kind="sandbox", status="connected")
        s.add(channel)
        s.commit()
        campaign = Campaign(name="Bench", status="sending", channel_id=channel.id, started_at=start)
        s.add(campaign)
        s.commit()
        cid, channel_id = campaign.id, campaign.channel_id
    rows = []
    for i in range(n):
        sent = start + timedelta(seconds=1800 * i / n)
        roll = rng.random()
        row = {
            "campaign_id": cid,
            "address": f"{PREFIXES[i % len(PREFIXES)]}{i:07d}",
            "variables": {},
            "status": "sent",
            "message_id": f"wamid.bench.{i}",
            "attempts": 1,
            "sent_at": sent,
            "updated_at": sent,
            "error_title": "",
            "error_code": None,
            "delivered_at": None,
            "read_at": None,
            "failed_at": None,
        }
        if roll < 0.05:
            row.update(status="failed", sent_at=None, failed_at=sent, updated_at=sent, error_code=131026)
        elif roll < 0.85:
            delivered = sent + timedelta(seconds=1)
            row.update(status="delivered", delivered_at=delivered, updated_at=delivered)
            if roll < 0.60:
                read = delivered + timedelta(seconds=3)
                row.update(status="read", read_at=read, updated_at=read)
        rows.append(row)
    # 2% of the read recipients answer (a text, or a quick-reply button for one in three of them).
    inbound = [
        {
            "channel_id": channel_id,
            "message_id": f"wamid.in.{i}",
            "from_address": row["address"],
            "kind": "button" if i % 3 == 0 else "text",
            "text": "Yes please" if i % 3 == 0 else "Thanks, see you there on Saturday",
            "payload": "YES" if i % 3 == 0 else "",
            "context_message_id": row["message_id"],
            "received_at": row["read_at"] + timedelta(seconds=30),
            "campaign_id": cid,  # as opt_out.record_inbound matches it (context id, same channel)
        }
        for i, row in enumerate(rows)
        if row["read_at"] is not None and i % 50 == 0
    ]
    with engine.begin() as conn:
        for chunk in range(0, n, 20_000):
            conn.execute(insert(CampaignRecipient), rows[chunk : chunk + 20_000])
        if inbound:
            conn.execute(insert(InboundMessage), inbound)
    with Session(engine) as s:
        campaign_progress.refresh_counters(s, cid)
        s.commit()
    return cid


def timed(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="hubcast-insight-bench-")
    url = f"sqlite:///{folder}/bench.db"
    upgrade_to_head(url)
    engine = make_engine(url)
    t0 = time.perf_counter()
    cid = build(engine, args.recipients)
    built = time.perf_counter() - t0
    with Session(engine) as s:
        actor = s.exec(select(User)).first()

        def live():
            return insight.insight(session=s, actor=actor, campaign_id=cid, everything=False)

        def full():
            return insight.insight(session=s, actor=actor, campaign_id=cid, everything=True)

        parts = {
            "timeline (whole campaign)": lambda: insight.timeline(session=s, actor=actor, campaign_id=cid, live=False),
            "failure reasons": lambda: insight.failure_reasons(session=s, actor=actor, campaign_id=cid),
            "countries": lambda: insight.countries(session=s, actor=actor, campaign_id=cid),
            "replies (first page + total)": lambda: replies.replies_page(session=s, actor=actor, campaign_id=cid),
            "button counts": lambda: replies.button_counts(session=s, actor=actor, campaign_id=cid),
        }
        part_s = {name: timed(fn, args.runs) for name, fn in parts.items()}
        # The same page once the campaign has finished: the timeline is then the whole campaign's.
        s.execute(text("UPDATE campaigns SET status = 'sent' WHERE id = :id"), {"id": cid})
        s.commit()
        finished_s = timed(full, max(1, args.runs // 2))
        s.execute(text("UPDATE campaigns SET status = 'sending' WHERE id = :id"), {"id": cid})
        s.commit()
        window_rows = sum(p["sent"] + p["delivered"] + p["read"] + p["failed"] for p in live()["timeline"]["points"])
        live_s = timed(live, args.runs)
        full_s = timed(full, max(1, args.runs // 2))
        s.execute(text("DROP INDEX ix_recipient_campaign_updated"))
        s.commit()
        baseline_s = timed(live, args.runs)
    engine.dispose()
    load = os.getloadavg()[0]
    table = [
        f"\n## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, SQLite, {args.recipients:,} recipients, load average {load:.1f}\n",
        f"(built in {built:.1f} s; {window_rows:,} status stamps in the live 2-minute window)\n",
        "| query | median |",
        "|---|---|",
        f"| live tick (funnel + per-second timeline), index (campaign_id, updated_at) | {live_s * 1000:.0f} ms |",
        f"| live tick, baseline without that index (same run) | {baseline_s * 1000:.0f} ms |",
        f"| full read while sending (live timeline, failures, countries, replies) | {full_s * 1000:.0f} ms |",
        f"| full read once sent (whole-campaign timeline, failures, countries, replies) | {finished_s * 1000:.0f} ms |",
        *(f"| &nbsp;&nbsp;of which {name} | {secs * 1000:.0f} ms |" for name, secs in part_s.items()),
    ]
    print("\n".join(table))
    with RESULTS.open("a", encoding="utf-8") as fh:
        fh.write("\n".join(table) + "\n")


if __name__ == "__main__":
    main()
