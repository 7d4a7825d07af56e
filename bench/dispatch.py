"""Dispatch benchmark (issue 7 §2): messages per second from "Send" to the last row marked sent.

For each database (SQLite file, PostgreSQL database `hubcast_bench_dispatch`, recreated each run):
  capped:   the Sandbox (own process) capped at 1,000 msg/s, answering after 150 ms; 2 `hubcast worker`
            processes; 100,000 recipients; the clock runs from start_campaign() (freezing the audience
            included) to the campaign's last row marked sent. Target >= 950 msg/s.
  uncapped: the same without cap or latency, against a baseline measured in the same run: a bare
            asyncio loop posting the same bodies to the same Sandbox with aiohttp at the same total
            concurrency. Target: Hubcast >= 70% of the bare loop.
Also reported: duplicates (from the Sandbox's log), the busiest 1-second window in the capped run,
the workers' peak RSS, their CPU time per 1,000 messages (both workers, from /proc: unlike msg/s it
hardly depends on what else loads the machine) and the 1-minute load average when the run ended.
BENCH_PROFILE_DIR=/some/dir makes every send job dump a cProfile and its time spans there.

    .venv/bin/python bench/dispatch.py                 # both databases, 100,000 recipients
    .venv/bin/python bench/dispatch.py --db sqlite --recipients 20000 --runs 1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HUBCAST_SECRET_KEY", "bench-secret-key-that-is-long-enough-0123456789")
os.environ.setdefault("HUBCAST_ENV", "test")
from bench.http_api_server import bench_redis_url, http_api_server  # noqa: E402

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/hubcast_bench_dispatch"
RESULTS = ROOT / "bench" / "results" / "dispatch.md"
CONCURRENCY_PER_WORKER = 128
# --tier: the channel's messaging limit tier, so that every claim also asks the daily messaging limit (issue 12)
CHANNEL_TIER = ""
PROFILE_DIR = os.environ.get("BENCH_PROFILE_DIR", "")  # set: workers dump cProfile + spans per send job there


def machine() -> str:
    try:
        model = next(
            (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
            platform.processor(),
        )
    except OSError:
        model = platform.processor()
    return (
        f"{os.cpu_count()} CPU ({model}), Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def prepare_database(kind: str, tmp: Path) -> str:
    from app.migrate import upgrade_to_head

    if kind == "sqlite":
        url = f"sqlite:///{tmp / 'bench.db'}"
    else:
        from sqlalchemy import create_engine, text

        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("DROP DATABASE IF EXISTS hubcast_bench_dispatch WITH (FORCE)"))
            conn.execute(text("CREATE DATABASE hubcast_bench_dispatch"))
        admin.dispose()
        url = PG_URL
    upgrade_to_head(url)
    return url


def use_database(url: str) -> None:
    from app import db
    from app.settings import reset_settings_cache

    os.environ["DATABASE_URL"] = url
    reset_settings_cache()
    db._engine_for.cache_clear()


def seed(n: int, sandbox_url: str, mps: int) -> tuple[int, int]:
    """A user, a Sandbox channel, the order_update template and a list of n contacts; returns
    (user id, campaign id)."""
    from sqlalchemy import insert
    from sqlmodel import Session

    from app.db import get_engine
    from app.models import Campaign, Channel, Contact, ContactIdentity, ContactList, ListMembership, Template
    from app.services.accounts.users import create_user
    from app.timeutil import utcnow
    from tests.support.factories import MAPPING, ORDER_UPDATE
    from tests.support.sandbox import PNID, SECRET, TOKEN, WABA

    engine = get_engine()
    now = utcnow()
    with Session(engine) as s:
        user, _ = create_user(
            session=s,
            actor=None,
            email=f"bench{time.time_ns()}@example.com",
            role="basic",
            password="correct horse battery",
        )
        channel = Channel(
            name=f"bench {time.time_ns()}",
            kind="sandbox",
            status="connected",
            phone_number_id=PNID,
            business_account_id=WABA,
            access_token=TOKEN,
            app_secret=SECRET,
            api_base_url=sandbox_url,
            messages_per_second=mps,
            messaging_limit_tier=CHANNEL_TIER,
        )
        s.add(channel)
        s.commit()
        template = Template(
            channel_id=channel.id,
            name="order_update",
            language="en_US",
            category="UTILITY",
            status="APPROVED",
            components=ORDER_UPDATE,
        )
        clist = ContactList(name=f"bench {time.time_ns()}")
        s.add(template)
        s.add(clist)
        s.commit()
        ids = (user.id, channel.id, template.id, clist.id)
    user_id, channel_id, template_id, list_id = ids
    with engine.begin() as conn:
        first = (
            conn.execute(
                Contact.__table__.select()
                .with_only_columns(Contact.__table__.c.id)
                .order_by(Contact.__table__.c.id.desc())
                .limit(1)
            ).scalar()
            or 0
        )
        for start in range(0, n, 10_000):
            block = range(start, min(n, start + 10_000))
            conn.execute(
                insert(Contact.__table__),
                [
                    {
                        "id": first + 1 + i,
                        "first_name": f"Ana{i}",
                        "last_name": "",
                        "email": "",
                        "country": "FR",
                        "city": "",
                        "language": "",
                        "custom_fields": {},
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in block
                ],
            )
            conn.execute(
                insert(ContactIdentity.__table__),
                [
                    {
                        "contact_id": first + 1 + i,
                        "channel_type": "whatsapp",
                        "address": f"+336{10_000_000 + first + i:08d}",
                        "subscribed": True,
                        "subscription_changed_at": now,
                        "created_at": now,
                    }
                    for i in block
                ],
            )
            conn.execute(
                insert(ListMembership.__table__),
                [{"list_id": list_id, "contact_id": first + 1 + i, "source": "import", "added_at": now} for i in block],
            )
    with Session(engine) as s:
        campaign = Campaign(
            name="bench",
            audience_kind="list",
            audience_list_id=list_id,
            channel_id=channel_id,
            template_id=template_id,
            variable_mapping=MAPPING,
        )
        s.add(campaign)
        s.commit()
        return user_id, campaign.id


def start_workers(n: int, tmp: Path, db_url: str, r_url: str) -> list[subprocess.Popen]:
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "REDIS_URL": r_url,
        "HUBCAST_DATA_DIR": str(tmp / "data"),
        "HUBCAST_SEND_CONCURRENCY": str(CONCURRENCY_PER_WORKER),
    }
    if PROFILE_DIR:
        env["HUBCAST_SEND_PROFILE_DIR"] = PROFILE_DIR
    return [
        subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker"],
            cwd=ROOT,
            env=env,
            stdout=open(tmp / f"worker{i}.log", "wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for i in range(n)
    ]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (load-independent, unlike wall-clock rates)."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def peak_rss_mb(pid: int) -> float:
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def stop(procs: list[subprocess.Popen]) -> None:
    import signal

    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)


def run_campaign(n: int, db_url: str, r_url: str, sandbox, mps: int, tmp: Path, load: CsvLoad | None = None) -> dict:
    import redis
    from sqlalchemy import func, select
    from sqlmodel import Session

    from app.db import get_engine
    from app.models import CampaignRecipient, User
    from app.services.sending.lifecycle import start_campaign
    from tests.support.sandbox import max_per_window

    redis.Redis.from_url(r_url).flushdb()
    sandbox.admin("POST", "/_sandbox/reset")
    sandbox.log_file.write_text("")
    user_id, campaign_id = seed(n, sandbox.url, mps)
    workers = start_workers(2, tmp, db_url, r_url)
    time.sleep(3)  # the workers are up and idle, as in production
    engine = get_engine()
    idle_cpu = [cpu_seconds(w.pid) for w in workers]
    try:
        t0 = time.perf_counter()
        with Session(engine) as s:
            start_campaign(session=s, actor=s.get(User, user_id), campaign_id=campaign_id)
        frozen = time.perf_counter() - t0
        if load is not None:
            load.start()
        deadline = time.monotonic() + max(600, n / 50)
        while True:
            with Session(engine) as s:
                status = s.execute(
                    select(CampaignRecipient.status, func.count())
                    .where(CampaignRecipient.campaign_id == campaign_id)
                    .group_by(CampaignRecipient.status)
                ).all()
            counts = dict(status)
            if not counts.get("queued") and not counts.get("sending"):
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"did not finish: {counts}")
            time.sleep(0.2)
        with Session(engine) as s:
            last = s.execute(
                select(func.max(CampaignRecipient.sent_at)).where(CampaignRecipient.campaign_id == campaign_id)
            ).scalar()
        wall = time.perf_counter() - t0
        rss = [peak_rss_mb(w.pid) for w in workers]
        cpu = sum(cpu_seconds(w.pid) - c for w, c in zip(workers, idle_cpu))
    finally:
        stop(workers)
    log = sandbox.log()
    entries = sandbox.entries()
    extra = {}
    if load is not None:
        extra = {"csv_check_s": load.join(), **webhook_figures(engine, campaign_id, n, wall)}
    return {
        **extra,
        "recipients": n,
        "seconds": wall,
        "rate": n / wall,
        "freeze_s": frozen,
        "counts": counts,
        "duplicates": len(log["duplicates"]),
        "accepted": log["total"],
        "rejected": log["rejected"],
        "busiest_1s": max_per_window(entries) if entries else 0,
        "worker_peak_rss_mb": max(rss),
        "worker_cpu_ms_per_1000": 1000 * 1000 * cpu / n,
        "load_avg": os.getloadavg()[0],
        "last_sent_at": str(last),
    }


class CsvLoad:
    """A 20 MB audience CSV checked in its own process (as the web process checks an upload) while the
    campaign sends: started once the campaign has started, joined after it ends; `join()` gives seconds."""

    def __init__(self, csv_path: Path, log_path: Path):
        self.csv_path, self.log_path = csv_path, log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        code = (
            "import sys, time; t = time.perf_counter(); "
            "from app.services.audiences.csv_reader import check_csv; "
            "from app.services.audiences.summary import csv_audience_summary; "
            "s = csv_audience_summary(check_csv(sys.argv[1])); "
            "print(f'{time.perf_counter() - t:.2f}', s.total, s.reach, flush=True)"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, str(self.csv_path)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=open(self.log_path, "wb"),
            text=True,
        )

    def join(self) -> float:
        assert self.proc is not None
        out, _ = self.proc.communicate(timeout=600)
        if self.proc.returncode != 0:
            raise SystemExit("the CSV check failed: " + self.log_path.read_text(errors="replace")[-2000:])
        return float(out.split()[0])


def webhook_figures(engine, campaign_id: int, n: int, send_wall: float) -> dict:
    """The statuses the Sandbox posted for this campaign's messages, as the web process stored and applied
    them: none lost (every recipient reaches `read`), apply lag per event, statuses received per second."""
    from sqlalchemy import func, select

    from app.models import CampaignRecipient, WebhookStatusEvent

    deadline = time.monotonic() + 120  # the Sandbox's last read receipts leave a few seconds after the last send
    while True:
        with engine.connect() as conn:
            read = conn.execute(
                select(func.count()).where(
                    CampaignRecipient.campaign_id == campaign_id, CampaignRecipient.status == "read"
                )
            ).scalar_one()
        if read == n or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    with engine.connect() as conn:
        rows = conn.execute(select(WebhookStatusEvent.received_at, WebhookStatusEvent.applied_at)).all()
    lags = sorted((a - r).total_seconds() for r, a in rows if a is not None)
    received = sorted(r for r, _ in rows)
    during = sum(1 for r in received if (r - received[0]).total_seconds() <= send_wall) if received else 0
    return {
        "statuses_stored": len(rows),
        "statuses_applied": len(lags),
        "statuses_per_s_during_send": during / send_wall,
        "lag_p50_s": lags[len(lags) // 2] if lags else float("nan"),
        "lag_p99_s": lags[int(len(lags) * 0.99)] if lags else float("nan"),
        "lag_max_s": lags[-1] if lags else float("nan"),
        "read": read,
    }


async def bare_loop(url: str, n: int, concurrency: int) -> float:
    """The baseline: aiohttp posting the same bodies at the same concurrency, nothing else."""
    import aiohttp

    from tests.support.sandbox import PNID, TOKEN

    body = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "type": "template",
        "template": {
            "name": "order_update",
            "language": {"code": "en_US"},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "Ana"},
                        {"type": "text", "text": "#48213"},
                        {"type": "text", "text": "Friday"},
                    ],
                }
            ],
        },
    }
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def worker():
            while True:
                try:
                    i = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                payload = dict(body, to=f"+337{10_000_000 + i:08d}", biz_opaque_callback_data=str(i))
                async with session.post(f"{url}/v23.0/{PNID}/messages", json=payload) as r:
                    await r.read()

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return n / (time.perf_counter() - t0)


def capped_under_load(n: int, db_url: str, r_url: str, tmp: Path, kind: str, dedicated_applier: bool = False) -> dict:
    from bench.csv_audience import generate_csv
    from tests.support.sandbox import run_sandbox

    csv_path = tmp / "audience-20mb.csv"
    if not csv_path.exists():
        generate_csv(csv_path, 20 * 1024 * 1024)
    with http_api_server(
        db_url, tmp / f"web-{kind}", {"REDIS_URL": r_url}, dedicated_applier=dedicated_applier
    ) as webhook_url:
        extra = ("--webhook-url", webhook_url, "--read-ratio", "1") + (
            "--sent-delay",
            "0.1,0.5",
            "--delivered-delay",
            "0.3,1",
            "--read-delay",
            "0.3,1.5",
        )
        with run_sandbox(tmp / f"sb-load-{kind}", mps=1000, latency_ms=150, extra=extra) as sb:
            return run_campaign(n, db_url, r_url, sb, 1000, tmp, CsvLoad(csv_path, tmp / "csv-check.log"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=1, help="runs per figure (the median is reported)")
    parser.add_argument("--skip-uncapped", action="store_true")
    parser.add_argument("--skip-capped", action="store_true")
    parser.add_argument(
        "--with-load",
        action="store_true",
        help="also the capped run while a 20 MB CSV is checked and the Sandbox posts every message's sent, "
        "delivered and read statuses (~3,000/s) to a web process that applies them",
    )
    parser.add_argument(
        "--applier",
        choices=("web", "process"),
        default="web",
        help="with --with-load: statuses applied by the web process (default) or a dedicated `hubcast applier`",
    )
    parser.add_argument(
        "--tier",
        default="",
        help="also the uncapped run with the channel on this messaging limit tier (e.g. TIER_100K): the cost of "
        "the daily messaging limit's check on the hot path, beside the run without it",
    )
    args = parser.parse_args()
    global CHANNEL_TIER

    from tests.support.sandbox import run_sandbox

    tmp = Path(tempfile.mkdtemp(prefix="hubcast-bench-"))
    r_url, redis_proc = bench_redis_url(tmp)
    os.environ["REDIS_URL"] = r_url
    lines = [
        f"\n## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — {machine()}",
        f"{args.recipients:,} recipients, 2 workers × {CONCURRENCY_PER_WORKER} in flight, "
        f"{args.runs} run(s) per figure (median)\n",
        "| database | scenario | msg/s | target | seconds | freeze s | duplicates | busiest 1 s | worker RSS MB "
        "| worker CPU ms / 1,000 msgs | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    databases = ("sqlite", "postgresql") if args.db == "both" else (args.db,)
    load_lines = [
        "",
        "Under load (--with-load), in the same run: a 20 MB CSV audience check in its own process, and the "
        "Sandbox posting every message's sent/delivered/read statuses to a web process that stores and applies them.\n",
        "| database | CSV check s | statuses/s received during the send | statuses stored / expected "
        "| applied | apply lag p50 / p99 / max s | recipients read |",
        "|---|---|---|---|---|---|---|",
    ]
    try:
        for kind in databases:
            db_url = prepare_database(kind, tmp)
            use_database(db_url)
            if not args.skip_capped:
                with run_sandbox(tmp / f"sb-capped-{kind}", mps=1000, latency_ms=150) as sb:
                    runs = [run_campaign(args.recipients, db_url, r_url, sb, 1000, tmp) for _ in range(args.runs)]
                r = sorted(runs, key=lambda x: x["rate"])[len(runs) // 2]
                print(kind, "capped", json.dumps(r, default=str))
                lines.append(
                    f"| {kind} | 1,000/s cap + 150 ms | {statistics.median(x['rate'] for x in runs):.0f} | "
                    f"≥ 950 | {r['seconds']:.1f} | {r['freeze_s']:.2f} | {r['duplicates']} | "
                    f"{r['busiest_1s']} | {r['worker_peak_rss_mb']:.0f} | "
                    f"{r['worker_cpu_ms_per_1000']:.0f} | {r['load_avg']:.1f} |"
                )
            if args.with_load:
                r = capped_under_load(args.recipients, db_url, r_url, tmp, kind, args.applier == "process")
                print(kind, "capped under load", json.dumps(r, default=str))
                applied_by = " (statuses: `hubcast applier`)" if args.applier == "process" else ""
                lines.append(
                    f"| {kind} | 1,000/s cap + 150 ms, **under load**{applied_by} | {r['rate']:.0f} | ≥ 950 | {r['seconds']:.1f} | "
                    f"{r['freeze_s']:.2f} | {r['duplicates']} | {r['busiest_1s']} | {r['worker_peak_rss_mb']:.0f} | "
                    f"{r['worker_cpu_ms_per_1000']:.0f} | {r['load_avg']:.1f} |"
                )
                load_lines.append(
                    f"| {kind} | {r['csv_check_s']:.1f} | {r['statuses_per_s_during_send']:,.0f} | "
                    f"{r['statuses_stored']:,} / {3 * args.recipients:,} | {r['statuses_applied']:,} | "
                    f"{r['lag_p50_s']:.2f} / {r['lag_p99_s']:.2f} / {r['lag_max_s']:.2f} | {r['read']:,} |"
                )
            if not args.skip_uncapped:
                with run_sandbox(tmp / f"sb-free-{kind}", mps=0, latency_ms=0) as sb:
                    runs = [run_campaign(args.recipients, db_url, r_url, sb, 0, tmp) for _ in range(args.runs)]
                    bare = [
                        asyncio.run(bare_loop(sb.url, args.recipients, 2 * CONCURRENCY_PER_WORKER))
                        for _ in range(args.runs)
                    ]
                    tiered = []
                    if args.tier:
                        CHANNEL_TIER = args.tier
                        tiered = [run_campaign(args.recipients, db_url, r_url, sb, 0, tmp) for _ in range(args.runs)]
                        CHANNEL_TIER = ""
                rate = statistics.median(x["rate"] for x in runs)
                base = statistics.median(bare)
                r = sorted(runs, key=lambda x: x["rate"])[len(runs) // 2]
                print(kind, "uncapped", json.dumps(r, default=str), "bare aiohttp", round(base))
                lines.append(
                    f"| {kind} | uncapped, no latency | {rate:.0f} ({rate / base:.0%} of bare loop "
                    f"{base:.0f}) | ≥ 70% | {r['seconds']:.1f} | {r['freeze_s']:.2f} | {r['duplicates']} | – | "
                    f"{r['worker_peak_rss_mb']:.0f} | {r['worker_cpu_ms_per_1000']:.0f} | {r['load_avg']:.1f} |"
                )
                if tiered:
                    t_rate = statistics.median(x["rate"] for x in tiered)
                    t = sorted(tiered, key=lambda x: x["rate"])[len(tiered) // 2]
                    print(kind, "uncapped with tier", args.tier, json.dumps(t, default=str))
                    lines.append(
                        f"| {kind} | uncapped, {args.tier} (messaging limit checked) | {t_rate:.0f} "
                        f"({t_rate / base:.0%} of bare loop, {t_rate / rate:.0%} of the run without a tier) | ≥ 70% "
                        f"| {t['seconds']:.1f} | {t['freeze_s']:.2f} | {t['duplicates']} | – | "
                        f"{t['worker_peak_rss_mb']:.0f} | {t['worker_cpu_ms_per_1000']:.0f} | {t['load_avg']:.1f} |"
                    )
    finally:
        if redis_proc is not None:
            redis_proc.terminate()
        shutil.rmtree(tmp, ignore_errors=True)
    text = "\n".join(lines + (load_lines if args.with_load else [])) + "\n"
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    if not RESULTS.exists():
        RESULTS.write_text(
            '# Dispatch benchmark (bench/dispatch.py)\n\nFrom "Send" (audience freeze included) '
            "to the last recipient row marked sent; see the script's docstring.\n"
        )
    with RESULTS.open("a") as fh:
        fh.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
