"""Freeze benchmark (issue 7): the time `freeze_audience` + commit takes for a list of N contacts,
PostgreSQL's COPY path against the portable executemany INSERT path, on the same database and audience.

Database `hubcast_bench_freeze` (recreated each run; dropped at the end), seeded like bench/dispatch.py
(first name from the contact, two fixed texts: the fast reading). Each run freezes a fresh campaign; the
paths alternate so that drift in the machine's load hits both; the median per path is reported and
appended to bench/results/dispatch.md with the 1-minute load average.

    .venv/bin/python bench/freeze.py                       # 100,000 contacts, 3 runs per path
    .venv/bin/python bench/freeze.py --contacts 20000 --runs 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dispatch  # noqa: E402  (puts the project root on sys.path, sets the env defaults)

PG_ADMIN = dispatch.PG_ADMIN
DB = "hubcast_bench_freeze"
PG_URL = f"postgresql+psycopg://postgres@127.0.0.1:5432/{DB}"


def recreate(drop_only: bool = False) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)"))
        if not drop_only:
            conn.execute(text(f"CREATE DATABASE {DB}"))
    admin.dispose()


def freeze_once(base_campaign_id: int, use_copy: bool) -> tuple[float, int]:
    from sqlmodel import Session

    from app.db import get_engine
    from app.models import Campaign
    from app.services.sending.freeze import freeze_audience
    from app.timeutil import utcnow

    with Session(get_engine()) as s:
        base = s.get(Campaign, base_campaign_id)
        campaign = Campaign(name="bench freeze", audience_kind=base.audience_kind,
                            audience_list_id=base.audience_list_id, channel_id=base.channel_id,
                            template_id=base.template_id,
                            variable_mapping=base.variable_mapping)
        s.add(campaign)
        s.commit()
        s.refresh(campaign)
        t0 = time.perf_counter()
        total = freeze_audience(s, campaign, utcnow(), use_copy=use_copy)
        s.commit()
        return time.perf_counter() - t0, total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3, help="runs per path (the median is reported)")
    parser.add_argument("--no-record", action="store_true", help="print only, do not append to the results")
    args = parser.parse_args()

    from app.migrate import upgrade_to_head

    recreate()
    try:
        upgrade_to_head(PG_URL)
        dispatch.use_database(PG_URL)
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
    load = os.getloadavg()[0]
    lines = [
        f"\n## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — freeze_audience on PostgreSQL (bench/freeze.py) — "
        f"{dispatch.machine()}",
        f"{args.contacts:,} contacts (list, first name + 2 fixed texts), freeze + commit, median of {args.runs} "
        f"run(s) per path, paths alternated, load avg {load:.1f}\n",
        "| path | seconds | rows/s | all runs (s) |",
        "|---|---|---|---|",
        f"| before: executemany INSERT … ON CONFLICT | {before:.2f} | {args.contacts / before:,.0f} | "
        + ", ".join(f"{t:.2f}" for t in times[False]) + " |",
        f"| after: COPY into a temp table + one INSERT … SELECT … ON CONFLICT | {after:.2f} | "
        f"{args.contacts / after:,.0f} | " + ", ".join(f"{t:.2f}" for t in times[True]) + " |",
    ]
    print("\n".join(lines))
    if not args.no_record:
        with open(dispatch.RESULTS, "a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
