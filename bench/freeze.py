"""Freeze benchmark (issue 16 §2): time from "Send" to the first message posted to the Sandbox, the
streaming freeze against the former up-front freeze (the baseline, `start_campaign(stream_freeze=False)`),
measured in the same run on the same database and audience, and the whole freeze's duration.

Setup: a list of N contacts seeded like bench/dispatch.py (first name from the contact, two fixed texts);
2 `hubcast worker` processes, idle and listening before each start; the Sandbox (own process) capped at
1,000 msg/s and answering at once (it stamps each message when it accepts it). Per run and mode a fresh
campaign of the whole list is started with `start_campaign` and
- "first message" = the Sandbox's stamp of its first accepted message − the moment `start_campaign` was called;
- "Send returned" = how long `start_campaign` took (the web request);
- "freeze" = from the call until the campaign's `freezing` flag cleared (streaming: the last chunk frozen
  by a send job while it sends) or until `start_campaign` returned (up-front);
then the campaign is cancelled and its rows deleted. Modes alternate within a run, so drift in the
machine's load hits both. Figures and the 1-minute load average are appended to bench/results/freeze.md.

    .venv/bin/python bench/freeze.py --db sqlite --contacts 100000
    .venv/bin/python bench/freeze.py --db postgresql --contacts 1000000 --pg-db hubcast_freeze --keep
    .venv/bin/python bench/freeze.py --writers             # issue 7: COPY vs executemany INSERT (PostgreSQL)

PostgreSQL uses its own database (`--pg-db`, default hubcast_bench_freeze): created and seeded when it does
not hold a bench list of N contacts yet, then ANALYZEd (as autovacuum would after a bulk load), dropped at
the end unless `--keep`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dispatch  # (puts the project root on sys.path, sets the env defaults)

PG_ADMIN = dispatch.PG_ADMIN
DB = "hubcast_bench_freeze"
RESULTS = dispatch.ROOT / "bench" / "results" / "freeze.md"


def pg_url(name: str) -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def recreate(name: str = DB, drop_only: bool = False) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        if not drop_only:
            conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()


def pg_exists(name: str) -> bool:
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        found = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
    admin.dispose()
    return found is not None


# --- issue 7: the two writers ----------------------------------------------------------------------


def freeze_once(base_campaign_id: int, use_copy: bool) -> tuple[float, int]:
    from sqlmodel import Session

    from app.db import get_engine
    from app.models import Campaign
    from app.services.sending.freeze import freeze_audience
    from app.timeutil import utcnow

    with Session(get_engine()) as s:
        base = s.get(Campaign, base_campaign_id)
        campaign = Campaign(
            name="bench freeze",
            audience_kind=base.audience_kind,
            audience_list_id=base.audience_list_id,
            channel_id=base.channel_id,
            template_id=base.template_id,
            variable_mapping=base.variable_mapping,
        )
        s.add(campaign)
        s.commit()
        s.refresh(campaign)
        t0 = time.perf_counter()
        total = freeze_audience(s, campaign, utcnow(), use_copy=use_copy)
        s.commit()
        return time.perf_counter() - t0, total


def writers(args) -> list[str]:
    from app.migrate import upgrade_to_head

    recreate()
    url = pg_url(DB)
    try:
        upgrade_to_head(url)
        dispatch.use_database(url)
        _user_id, campaign_id = dispatch.seed(args.contacts, "http://127.0.0.1:9", 1000)
        freeze_once(campaign_id, use_copy=True)  # warm-up (caches, plans), not counted
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.runs):
            for use_copy in (False, True):
                seconds, total = freeze_once(campaign_id, use_copy)
                if total != args.contacts:
                    raise SystemExit(f"froze {total} rows, expected {args.contacts}")
                times[use_copy].append(seconds)
                print(f"{'COPY' if use_copy else 'INSERT (executemany)'}: {seconds:.2f} s", flush=True)
    finally:
        from app import db

        db.get_engine().dispose()
        db._engine_for.cache_clear()
        recreate(drop_only=True)
    before, after = statistics.median(times[False]), statistics.median(times[True])
    return [
        f"\n## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — freeze_audience on PostgreSQL (bench/freeze.py --writers) — "
        f"{dispatch.machine()}",
        f"{args.contacts:,} contacts (list, first name + 2 fixed texts), freeze + commit, median of {args.runs} "
        f"run(s) per path, paths alternated, load avg {os.getloadavg()[0]:.1f}\n",
        "| path | seconds | rows/s | all runs (s) |",
        "|---|---|---|---|",
        f"| before: executemany INSERT … ON CONFLICT | {before:.2f} | {args.contacts / before:,.0f} | "
        + ", ".join(f"{t:.2f}" for t in times[False])
        + " |",
        f"| after: COPY into a temp table + one INSERT … SELECT … ON CONFLICT | {after:.2f} | "
        f"{args.contacts / after:,.0f} | " + ", ".join(f"{t:.2f}" for t in times[True]) + " |",
    ]


# --- issue 16: first message, streaming vs up-front --------------------------------------------------


def prepare(args, tmp: Path) -> tuple[str, int, int, bool]:
    """(database url, user id, base campaign id, whether the database is ours to drop)."""
    from sqlalchemy import func, select
    from sqlmodel import Session

    from app.db import get_engine
    from app.migrate import upgrade_to_head
    from app.models import Campaign, ListMembership, User

    if args.db == "sqlite":
        url = f"sqlite:///{tmp / 'bench.db'}"
        upgrade_to_head(url)
        dispatch.use_database(url)
        user_id, campaign_id = dispatch.seed(args.contacts, "http://127.0.0.1:9", 1000)
        return url, user_id, campaign_id, False
    url = pg_url(args.pg_db)
    if not pg_exists(args.pg_db):
        recreate(args.pg_db)
    upgrade_to_head(url)
    dispatch.use_database(url)
    with Session(get_engine()) as s:  # a bench list of exactly N members from an earlier run?
        base = s.execute(select(Campaign).where(Campaign.name == "bench").order_by(Campaign.id)).scalars().first()
        members = (
            s.execute(
                select(func.count()).select_from(ListMembership).where(ListMembership.list_id == base.audience_list_id)
            ).scalar()
            if base
            else 0
        )
        user = s.execute(select(User).order_by(User.id)).scalars().first()
    if base is not None and members == args.contacts and user is not None:
        user_id, campaign_id = user.id, base.id
        print(f"reusing {args.pg_db}: list of {members:,}", flush=True)
    else:
        print(f"seeding {args.contacts:,} contacts into {args.pg_db}", flush=True)
        user_id, campaign_id = dispatch.seed(args.contacts, "http://127.0.0.1:9", 1000)
    with get_engine().connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
    return url, user_id, campaign_id, not args.keep


def first_entry_at(sb, timeout: float = 300) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sb.log_file.exists() and sb.log_file.stat().st_size:
            with sb.log_file.open() as fh:
                line = fh.readline()
            if line.endswith("\n"):
                return datetime.fromisoformat(json.loads(line)["at"]).timestamp()
        time.sleep(0.002)
    raise SystemExit("no message reached the Sandbox")


def one_start(base_id: int, user_id: int, sb, stream: bool) -> dict:
    from sqlalchemy import delete, func, select
    from sqlmodel import Session

    from app.db import get_engine
    from app.models import Campaign, CampaignRecipient, User
    from app.services.sending.lifecycle import cancel_campaign, start_campaign

    engine = get_engine()
    with Session(engine) as s:
        base = s.get(Campaign, base_id)
        campaign = Campaign(
            name=f"bench {'stream' if stream else 'up-front'}",
            audience_kind="list",
            audience_list_id=base.audience_list_id,
            channel_id=base.channel_id,
            template_id=base.template_id,
            variable_mapping=base.variable_mapping,
        )
        s.add(campaign)
        s.commit()
        cid = campaign.id
    sb.admin("POST", "/_sandbox/reset")
    sb.log_file.write_text("")
    with Session(engine) as s:
        user = s.get(User, user_id)
        t0 = time.time()
        start_campaign(session=s, actor=user, campaign_id=cid, stream_freeze=stream)
        returned = time.time() - t0
    first = first_entry_at(sb) - t0
    frozen = returned
    if stream:
        while True:
            with engine.connect() as conn:
                if not conn.execute(select(Campaign.freezing).where(Campaign.id == cid)).scalar():
                    break
            time.sleep(0.02)
        frozen = time.time() - t0
    sent_by_then = sb.log()["total"]
    with Session(engine) as s:
        cancel_campaign(session=s, actor=s.get(User, user_id), campaign_id=cid)
        rows = s.execute(
            select(func.count()).select_from(CampaignRecipient).where(CampaignRecipient.campaign_id == cid)
        ).scalar()
    time.sleep(1.5)  # the jobs see the cancel within a second; then the rows can go
    with engine.begin() as conn:
        conn.execute(delete(CampaignRecipient).where(CampaignRecipient.campaign_id == cid))
    return {
        "mode": "stream" if stream else "up-front",
        "first_s": first,
        "returned_s": returned,
        "freeze_s": frozen,
        "rows": rows,
        "sent_by_freeze_end": sent_by_then,
    }


def first_message(args) -> list[str]:
    from sqlmodel import Session

    from app.db import get_engine
    from app.models import Campaign, Channel
    from tests.support.sandbox import run_sandbox

    tmp = Path(tempfile.mkdtemp(prefix="hubcast-bench-freeze-"))
    r_url, redis_proc = dispatch.bench_redis_url(tmp)
    os.environ["REDIS_URL"] = r_url
    import redis

    redis.Redis.from_url(r_url).flushdb()
    db_url, user_id, base_id, drop = prepare(args, tmp)
    results: list[dict] = []
    workers = []
    rss = []
    try:
        with run_sandbox(tmp / "sb", mps=1000, latency_ms=0) as sb:
            with Session(get_engine()) as s:  # the (reused) channel sends to this run's Sandbox
                base_channel = s.get(Channel, s.get(Campaign, base_id).channel_id)
                base_channel.api_base_url, base_channel.messages_per_second = sb.url, 1000
                s.add(base_channel)
                s.commit()
            workers = dispatch.start_workers(2, tmp, db_url, r_url)
            time.sleep(3)  # the workers are up and idle, as in production
            for _ in range(args.runs):
                for stream in (True, False):
                    r = one_start(base_id, user_id, sb, stream)
                    if r["rows"] != args.contacts:
                        raise SystemExit(f"{r['mode']}: froze {r['rows']} rows, expected {args.contacts}")
                    print(json.dumps(r), flush=True)
                    results.append(r)
            rss = [dispatch.peak_rss_mb(w.pid) for w in workers]
    finally:
        dispatch.stop(workers)
        if redis_proc is not None:
            redis_proc.terminate()
        from app import db

        db.get_engine().dispose()
        db._engine_for.cache_clear()
        if drop:
            recreate(args.pg_db, drop_only=True)
        shutil.rmtree(tmp, ignore_errors=True)

    def med(mode: str, key: str) -> float:
        return statistics.median(r[key] for r in results if r["mode"] == mode)

    def runs(mode: str, key: str) -> str:
        return ", ".join(f"{r[key]:.2f}" for r in results if r["mode"] == mode)

    load = os.getloadavg()[0]
    lines = [
        f'\n## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — first message after "Send", {args.db}, '
        f"{args.contacts:,} recipients (bench/freeze.py) — {dispatch.machine()}",
        f"2 workers idle before each start, Sandbox capped at 1,000 msg/s answering at once; median of "
        f"{args.runs} run(s) per mode, modes alternated; load avg {load:.1f}; worker peak RSS "
        f"{max(rss) if rss else float('nan'):.0f} MB\n",
        '| mode | first message (s) | "Send" returned (s) | whole freeze (s) | messages sent while freezing | '
        "all runs: first message (s) | all runs: freeze (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for mode, label in (("stream", "streaming freeze (this change)"), ("up-front", "baseline: up-front freeze")):
        lines.append(
            f"| {label} | {med(mode, 'first_s'):.2f} | {med(mode, 'returned_s'):.2f} | "
            f"{med(mode, 'freeze_s'):.2f} | {med(mode, 'sent_by_freeze_end'):,.0f} | "
            f"{runs(mode, 'first_s')} | {runs(mode, 'freeze_s')} |"
        )
    return lines


def full_send(args) -> list[str]:
    """Item 6: one streaming campaign sent to the whole list, the workers' peak RSS (VmHWM) measured."""
    from sqlalchemy import func, select
    from sqlmodel import Session

    from app.db import get_engine
    from app.models import Campaign, CampaignRecipient, Channel, User
    from app.services.sending.lifecycle import start_campaign
    from tests.support.sandbox import run_sandbox

    tmp = Path(tempfile.mkdtemp(prefix="hubcast-bench-fullsend-"))
    r_url, redis_proc = dispatch.bench_redis_url(tmp)
    os.environ["REDIS_URL"] = r_url
    import redis

    redis.Redis.from_url(r_url).flushdb()
    db_url, user_id, base_id, drop = prepare(args, tmp)
    workers = []
    try:
        with run_sandbox(tmp / "sb", mps=0, latency_ms=0) as sb:
            with Session(get_engine()) as s:
                base = s.get(Campaign, base_id)
                channel = s.get(Channel, base.channel_id)
                channel.api_base_url, channel.messages_per_second = sb.url, args.mps
                campaign = Campaign(
                    name="bench full send",
                    audience_kind="list",
                    audience_list_id=base.audience_list_id,
                    channel_id=base.channel_id,
                    template_id=base.template_id,
                    variable_mapping=base.variable_mapping,
                )
                s.add(channel)
                s.add(campaign)
                s.commit()
                cid = campaign.id
            sb.admin("POST", "/_sandbox/reset")
            sb.log_file.write_text("")
            workers = dispatch.start_workers(2, tmp, db_url, r_url)
            time.sleep(3)  # the workers are up and idle, as in production
            rss_idle = [dispatch.peak_rss_mb(w.pid) for w in workers]
            t0 = time.time()
            with Session(get_engine()) as s:
                start_campaign(session=s, actor=s.get(User, user_id), campaign_id=cid)
            engine = get_engine()
            while True:
                with engine.connect() as conn:
                    status = conn.execute(select(Campaign.status).where(Campaign.id == cid)).scalar()
                if status != "sending":
                    break
                time.sleep(1.0)
            wall = time.time() - t0
            rss = [dispatch.peak_rss_mb(w.pid) for w in workers]
            with engine.connect() as conn:
                counts = dict(
                    conn.execute(
                        select(CampaignRecipient.status, func.count())
                        .where(CampaignRecipient.campaign_id == cid)
                        .group_by(CampaignRecipient.status)
                    ).all()
                )
            log = sb.log()
    finally:
        dispatch.stop(workers)
        if redis_proc is not None:
            redis_proc.terminate()
        from app import db

        db.get_engine().dispose()
        db._engine_for.cache_clear()
        if drop:
            recreate(args.pg_db, drop_only=True)
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        json.dumps(
            {
                "status": status,
                "counts": counts,
                "wall": wall,
                "rss": rss,
                "rss_idle": rss_idle,
                "accepted": log["total"],
                "duplicates": len(log["duplicates"]),
            }
        )
    )
    cap = f"cap {args.mps:,} msg/s" if args.mps else "uncapped"
    return [
        f"\n## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — worker peak RSS during a {args.contacts:,}-recipient send, "
        f"{args.db} (bench/freeze.py --full-send) — {dispatch.machine()}",
        f"2 workers × {dispatch.CONCURRENCY_PER_WORKER} in flight, channel {cap}, Sandbox answering at once; "
        f"streaming freeze; load avg {os.getloadavg()[0]:.1f}\n",
        "| figure | value |",
        "|---|---|",
        f"| worker peak RSS (VmHWM), each | {', '.join(f'{r:.0f}' for r in rss)} MB (idle before: "
        f"{', '.join(f'{r:.0f}' for r in rss_idle)} MB) |",
        f"| campaign | {status}, {counts} |",
        f"| messages accepted / duplicates | {log['total']:,} / {len(log['duplicates'])} |",
        f"| wall time from Send to the campaign's end | {wall:.0f} s ({args.contacts / wall:,.0f} msg/s) |",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=1, help="runs per mode (the median is reported)")
    parser.add_argument("--pg-db", default=DB, help="PostgreSQL database of its own (created when missing)")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database for the next run")
    parser.add_argument("--writers", action="store_true", help="issue 7's figure: COPY vs INSERT (PostgreSQL)")
    parser.add_argument(
        "--full-send",
        action="store_true",
        help="issue 16 item 6: send one streaming campaign to everyone, report the workers' peak RSS",
    )
    parser.add_argument("--mps", type=int, default=0, help="--full-send: the channel's cap (0: uncapped)")
    parser.add_argument("--no-record", action="store_true", help="print only, do not append to the results")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stopped: still stop the workers (finally blocks)
    lines = writers(args) if args.writers else full_send(args) if args.full_send else first_message(args)
    print("\n".join(lines))
    if not args.no_record:
        target = dispatch.RESULTS if args.writers else RESULTS
        if not target.exists():
            target.write_text(
                '# Freeze benchmark (bench/freeze.py)\n\nTime from "Send" to the first message '
                "posted to the Sandbox, streaming freeze vs the up-front freeze; see the script's "
                "docstring.\n"
            )
        with open(target, "a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
