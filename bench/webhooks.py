"""Benchmark: webhook ingestion (issue 7 §3) against a real server of the app's HTTP routes.

Starts `build_http_api()` in its own process (granian, as `hubcast` serves it), on a fresh migrated
SQLite database holding one campaign of M recipients whose wamids are stored; then a loader posts
M × 3 signed status webhooks (sent, delivered, read; shuffled, 100 statuses per POST like the Sandbox)
with C concurrent connections. Reports:

- ingest rate: statuses acknowledged (HTTP 200) per second, first POST to last answer;
- POST latency p50 / p99 (the answer Meta waits for);
- apply lag: per event, `applied_at - received_at` from the events table (p50 / p99 / max), and the
  time from the last answer until every recipient reached `read` ("all applied within 2 s");
- none lost: stored events == posted unique statuses, all applied, every recipient read.

Baseline in the same run: the naive design, one transaction per event (insert the event, update the
recipient, commit) on the same kind of database, in-process (no HTTP at all, so it is flattered).
Medians of --runs runs; prints a table and appends it to bench/results/webhooks.md.

    .venv/bin/python bench/webhooks.py                # 10,000 messages = 30,000 statuses, 3 runs
    .venv/bin/python bench/webhooks.py --messages 20000 --concurrency 32 --runs 5

Issue 16 §4 (≥ 6,000 statuses/s sustained with apply lag ≤ 2 s; a burst of 50,000 applied within 15 s):

    .venv/bin/python bench/webhooks.py --rate 6000 --duration 60 --runs 1 --db both   # sustained
    .venv/bin/python bench/webhooks.py --burst 50000 --runs 1 --db both               # burst, unpaced

`--applier process` runs a dedicated `hubcast applier` beside the web process (it applies, the web
process only receives); `--applier both` measures the two deployments one after the other.

Both also report the applied rate (applied events / first arrival to last apply) and the time from
the first POST until every status is applied.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HUBCAST_ENV", "test")
os.environ.setdefault("HUBCAST_SECRET_KEY", "bench-secret-key-that-is-long-enough-0123456789")

import aiohttp  # noqa: E402
from alembic import command  # noqa: E402
from sqlalchemy import func, insert, select, update  # noqa: E402
from sqlmodel import Session  # noqa: E402

from app.db import make_engine  # noqa: E402
from app.migrate import alembic_config  # noqa: E402
from app.models import Campaign, CampaignRecipient, Channel, WebhookStatusEvent  # noqa: E402
from app.services.sending.freeze import refresh_planner_statistics  # noqa: E402
from app.whatsapp.signature import HEADER, sign  # noqa: E402
from bench.http_api_server import bench_redis_url, http_api_server  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "webhooks.md"
SECRET, PNID = "bench-app-secret", "100000000000001"
STATUSES = ("sent", "delivered", "read")


def prepare_db(url: str, messages: int) -> int:
    command.upgrade(alembic_config(url), "head")
    engine = make_engine(url)
    with Session(engine) as s:
        channel = Channel(name="Bench", kind="sandbox", phone_number_id=PNID, app_secret=SECRET)
        s.add(channel)
        s.commit()
        campaign = Campaign(name="Bench", status="sending", channel_id=channel.id, total_recipients=messages)
        s.add(campaign)
        s.commit()
        s.execute(
            insert(CampaignRecipient.__table__),
            [
                {
                    "campaign_id": campaign.id,
                    "address": f"+3361{i:07d}",
                    "status": "sending",
                    "message_id": f"wamid.bench.{i}",
                    "variables": {},
                    "attempts": 1,
                    "updated_at": datetime.now(UTC),
                }
                for i in range(messages)
            ],
        )
        s.commit()
        cid = campaign.id
        refresh_planner_statistics(s)  # as the end of a freeze does (the rows above stand for a frozen audience)
    engine.dispose()
    return cid


def bodies(messages: int, per_post: int, seed: int) -> tuple[list[bytes], int]:
    items = [
        {"id": f"wamid.bench.{i}", "status": st, "timestamp": str(1_764_000_000 + k), "recipient_id": "3361"}
        for i in range(messages)
        for k, st in enumerate(STATUSES)
    ]
    random.Random(seed).shuffle(items)
    out = []
    for start in range(0, len(items), per_post):
        raw = json.dumps(
            {
                "object": "whatsapp_business_account",
                "entry": [
                    {
                        "id": "1",
                        "changes": [
                            {
                                "field": "messages",
                                "value": {
                                    "messaging_product": "whatsapp",
                                    "metadata": {"display_phone_number": "15550100000", "phone_number_id": PNID},
                                    "statuses": items[start : start + per_post],
                                },
                            }
                        ],
                    }
                ],
            },
            separators=(",", ":"),
        ).encode()
        out.append(raw)
    return out, len(items)


async def load(
    url: str, posts: list[bytes], concurrency: int, rate: float = 0.0, per_post: int = 100
) -> tuple[float, list[float], int]:
    """Post everything with `concurrency` connections; with `rate` (statuses/s), paced like a steady sender."""
    signed = [(raw, sign(raw, SECRET)) for raw in posts]
    latencies: list[float] = []
    failures = 0
    queue = iter(enumerate(signed))
    start = time.perf_counter()

    async def worker(session: aiohttp.ClientSession):
        nonlocal failures
        for index, (raw, sig) in queue:
            if rate:
                delay = start + index * per_post / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            t0 = time.perf_counter()
            async with session.post(url, data=raw, headers={HEADER: sig, "Content-Type": "application/json"}) as r:
                await r.read()
                if r.status != 200:
                    failures += 1
            latencies.append(time.perf_counter() - t0)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter()  # (the pacing clock starts here)
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return elapsed, latencies, failures


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def fresh_database(kind: str, tmp: str, name: str) -> str:
    """A new empty database: a SQLite file in tmp, or PostgreSQL database `name` dropped and created again."""
    if kind == "sqlite":
        return f"sqlite:///{tmp}/{name}.db"
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def one_run(
    messages: int,
    concurrency: int,
    per_post: int,
    seed: int,
    rate: float = 0.0,
    kind: str = "sqlite",
    dedicated_applier: bool = False,
) -> dict:
    with tempfile.TemporaryDirectory(prefix="hubcast-bench-webhooks-") as tmp:
        url = fresh_database(kind, tmp, "hubcast_bench_webhooks")
        cid = prepare_db(url, messages)
        posts, total = bodies(messages, per_post, seed)
        engine = make_engine(url)
        try:
            with http_api_server(url, Path(tmp), dedicated_applier=dedicated_applier) as base:
                elapsed, latencies, failures = asyncio.run(load(base, posts, concurrency, rate, per_post))
                acked = time.perf_counter()
                while True:
                    with engine.connect() as conn:
                        done = conn.execute(
                            select(func.count())
                            .select_from(CampaignRecipient.__table__)
                            .where(CampaignRecipient.campaign_id == cid, CampaignRecipient.status == "read")
                        ).scalar_one()
                    if done == messages or time.perf_counter() - acked > 60:
                        break
                    time.sleep(0.02)
                all_applied_s = time.perf_counter() - acked
                time.sleep(1.0)  # let the applier's final counter refresh land
            return {
                **applied_lags(engine, cid),
                "rate": total / elapsed,
                "all_applied_s": all_applied_s,
                "first_post_to_all_applied_s": elapsed + all_applied_s,
                "post_p50_ms": pct(latencies, 0.5) * 1000,
                "post_p99_ms": pct(latencies, 0.99) * 1000,
                "posted": total,
                "failures": failures,
                "read": done,
                "messages": messages,
            }
        finally:
            engine.dispose()


def applied_lags(engine, campaign_id: int) -> dict:
    """Stored and applied status events, their apply lag (applied_at - received_at) and the read counter."""
    with engine.connect() as conn:
        rows = conn.execute(select(WebhookStatusEvent.received_at, WebhookStatusEvent.applied_at)).all()
        counter = conn.execute(select(Campaign.read_count).where(Campaign.id == campaign_id)).scalar_one()
    lags = [(a - r).total_seconds() for r, a in rows if a is not None]
    applied_at = [a for _, a in rows if a is not None]
    span = (max(applied_at) - min(r for r, _ in rows)).total_seconds() if applied_at else 0.0
    return {
        "applied_rate": len(applied_at) / span if span > 0 else float("nan"),
        "lag_p50_s": pct(lags, 0.5),
        "lag_p99_s": pct(lags, 0.99),
        "lag_max_s": max(lags) if lags else float("nan"),
        "stored": len(rows),
        "applied": len(lags),
        "read_counter": counter,
    }


def baseline(messages: int, kind: str = "sqlite") -> float:
    """One transaction per event: insert it, move its recipient, commit. Statuses per second."""
    with tempfile.TemporaryDirectory(prefix="hubcast-bench-baseline-") as tmp:
        url = fresh_database(kind, tmp, "hubcast_bench_webhooks_base")
        prepare_db(url, messages)
        engine = make_engine(url)
        events = [(f"wamid.bench.{i}", st) for i in range(messages) for st in STATUSES]
        random.Random(1).shuffle(events)
        start = time.perf_counter()
        with Session(engine) as s:
            for wamid, st in events:
                s.execute(
                    insert(WebhookStatusEvent.__table__).values(
                        message_id=wamid, status=st, payload={}, received_at=datetime.now(UTC)
                    )
                )
                s.execute(
                    update(CampaignRecipient.__table__).where(CampaignRecipient.message_id == wamid).values(status=st)
                )
                s.commit()
        elapsed = time.perf_counter() - start
        engine.dispose()
    return len(events) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--per-post", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline-messages", type=int, default=3_000)
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="pace the loader at this many statuses/s (0: as fast as the server answers)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=0.0,
        help="with --rate: post for this many seconds (messages = rate × duration / 3; overrides --messages)",
    )
    parser.add_argument(
        "--burst",
        type=int,
        default=0,
        help="post this many statuses unpaced (messages = burst / 3; overrides --messages and --rate)",
    )
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument(
        "--applier",
        choices=("web", "process", "both"),
        default="web",
        help="who applies the statuses: the web process (default), a dedicated `hubcast applier`, or both in turn",
    )
    args = parser.parse_args()
    if args.burst:
        args.messages, args.rate = -(-args.burst // len(STATUSES)), 0.0
    elif args.rate and args.duration:
        args.messages = int(args.rate * args.duration) // len(STATUSES)
    # The web process counts received webhooks in Redis (/metrics): a Redis is part of the deployment.
    tmp = Path(tempfile.mkdtemp(prefix="hubcast-bench-webhooks-redis-"))
    os.environ["REDIS_URL"], redis_proc = bench_redis_url(tmp)
    try:
        for kind in ("sqlite", "postgresql") if args.db == "both" else (args.db,):
            for applier in ("web", "process") if args.applier == "both" else (args.applier,):
                report_one_database(args, kind, applier)
    finally:
        if redis_proc is not None:
            redis_proc.terminate()


def report_one_database(args: argparse.Namespace, kind: str, applier: str = "web") -> None:
    runs = [
        one_run(args.messages, args.concurrency, args.per_post, seed, args.rate, kind, applier == "process")
        for seed in range(args.runs)
    ]
    base = [baseline(args.baseline_messages, kind) for _ in range(args.runs)]
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    lost = sum(r["posted"] - r["stored"] for r in runs)  # acknowledged (or posted) but never stored
    unapplied = sum(r["stored"] - r["applied"] for r in runs)  # stored, not applied when the 60 s wait ended
    wrong = sum(r["messages"] - r["read"] for r in runs) + sum(r["failures"] for r in runs)
    ingest_target = "≥ 6,000" if args.rate >= 6000 or args.burst else "≥ 3,000"
    burst_target = "≤ 15" if args.burst else "—"
    machine = f"{platform.node()} · {platform.machine()} · {os.cpu_count()} CPUs · Python {platform.python_version()} · {'SQLite' if kind == 'sqlite' else 'PostgreSQL'}"
    lines = [
        f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — {machine}",
        "",
        (f"Burst of {args.burst:,} statuses: " if args.burst else "")
        + f"{args.messages:,} messages × 3 statuses, {args.per_post} statuses per POST, {args.concurrency} concurrent "
        f"connections, {'paced at %s statuses/s' % format(args.rate, ',.0f') if args.rate else 'unpaced (burst)'}, median of {args.runs} runs (each: fresh database, fresh server process); "
        + (
            "statuses applied by a dedicated `hubcast applier` process."
            if applier == "process"
            else "statuses applied by the web process."
        ),
        "",
        "| figure | target | measured (median) | runs |",
        "|---|---|---|---|",
        f"| ingest rate (statuses/s acknowledged) | {ingest_target} | {med['rate']:,.0f} | "
        + ", ".join(f"{r['rate']:,.0f}" for r in runs)
        + " |",
        f"| applied rate (statuses/s, first arrival → last applied) | {ingest_target} | {med['applied_rate']:,.0f} | "
        + ", ".join(f"{r['applied_rate']:,.0f}" for r in runs)
        + " |",
        f"| baseline: one transaction per event (statuses/s, in-process) | — | {statistics.median(base):,.0f} | "
        + ", ".join(f"{b:,.0f}" for b in base)
        + " |",
        f"| ratio ingest / baseline | — | {med['rate'] / statistics.median(base):.1f}× | |",
        f"| POST latency p50 / p99 (ms) | ≪ 100 | {med['post_p50_ms']:.1f} / {med['post_p99_ms']:.1f} | "
        + ", ".join(f"{r['post_p50_ms']:.1f}/{r['post_p99_ms']:.1f}" for r in runs)
        + " |",
        f"| apply lag per event p50 / p99 / max (s) | ≤ 2 | {med['lag_p50_s']:.2f} / {med['lag_p99_s']:.2f} / "
        f"{med['lag_max_s']:.2f} | " + ", ".join(f"{r['lag_max_s']:.2f}" for r in runs) + " |",
        f"| last answer → every recipient read (s) | ≤ 2 | {med['all_applied_s']:.2f} | "
        + ", ".join(f"{r['all_applied_s']:.2f}" for r in runs)
        + " |",
        f"| first POST → every status applied (s) | {burst_target} | {med['first_post_to_all_applied_s']:.2f} | "
        + ", ".join(f"{r['first_post_to_all_applied_s']:.2f}" for r in runs)
        + " |",
        f"| lost / unapplied events / wrong final states + non-200 | 0 | {lost} / {unapplied} / {wrong} | |",
        "",
        f"lost={lost} · unapplied={unapplied} · load average (1/5/15 min) at the end: {' / '.join(f'{x:.2f}' for x in os.getloadavg())}",
        "",
    ]
    report = "\n".join(lines)
    print(report)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with open(RESULTS, "a") as fh:
        if fh.tell() == 0:
            fh.write("# Webhook ingestion benchmark (bench/webhooks.py)\n\n")
        fh.write(report + "\n")


if __name__ == "__main__":
    main()
