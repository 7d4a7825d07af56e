"""Topology benchmark (issue 14): the production topology on one box, two channels sending at once.

nginx round-robin over two `hubcast web`, `--workers` `hubcast worker` processes (default 3), one Sandbox per
channel (answering after 150 ms, like bench/dispatch.py), PostgreSQL (database `hubcast_topology`) and Redis
(db 12), built by tests/topology/harness.py. `--recipients` (default 100,000) split over two channels capped at
`--cap` msg/s each (default 500): the clock runs from starting both campaigns (audience freeze included) to
the last send the Sandboxes accepted. Target: >= 950 msg/s combined (2 x 500, less the limiter's 1.5% headroom).

Reported beside the one-process figure of bench/dispatch.py measured in the same run (PostgreSQL, one channel
capped at 1,000 msg/s, 2 workers; `--skip-baseline` to leave it out), with duplicates, each channel's busiest
1-second window, how long the status webhooks took to be applied after the last send, and the load average.
Appends to bench/results/topology.md.

    .venv/bin/python bench/topology.py                       # 100,000 recipients, 2 x 500 msg/s
    .venv/bin/python bench/topology.py --recipients 10000 --skip-baseline
    .venv/bin/python bench/topology.py --workers 2 --applier process   # statuses applied by `hubcast applier`
"""

from __future__ import annotations

import argparse
import json
import os
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
os.environ.setdefault("REFLEX_TELEMETRY_ENABLED", "false")
RESULTS = ROOT / "bench" / "results" / "topology.md"


def baseline(recipients: int) -> float | None:
    """bench/dispatch.py's capped PostgreSQL figure (one channel, 1,000 msg/s, 2 workers), run now."""
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "dispatch.py"),
            "--db",
            "postgresql",
            "--recipients",
            str(recipients),
            "--runs",
            "1",
            "--skip-uncapped",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    for line in done.stdout.splitlines():
        if line.startswith("postgresql capped "):
            return float(json.loads(line[len("postgresql capped ") :])["rate"])
    print(done.stdout[-2000:], done.stderr[-2000:], file=sys.stderr)
    return None


def run_topology(recipients: int, cap: int, workers: int, root: Path, dedicated_applier: bool = False) -> dict:
    from tests.topology import harness

    topo = harness.prepare(root)
    for key in ("DATABASE_URL", "REDIS_URL", "HUBCAST_DATA_DIR", "HUBCAST_SEND_LANES"):
        os.environ[key] = topo.env[key]
    from app.settings import reset_settings_cache

    reset_settings_cache()
    try:
        built_s = harness.ensure_frontend(root / "build.log")
        migrate = subprocess.run(
            [sys.executable, "-m", "app.cli", "migrate"], cwd=ROOT, env=topo.env, capture_output=True, text=True
        )
        assert migrate.returncode == 0, migrate.stderr
        sizes = [recipients // 2, recipients - recipients // 2]
        sandboxes = [harness.start_sandbox(topo, k, cap, latency_ms=150) for k in range(2)]
        world = harness.seed(sandboxes, sizes, [cap, cap])
        webs = [topo.web(0), topo.web(1)]
        for web in webs:
            topo.wait_web(web)
        harness.start_nginx(topo)
        procs = [topo.worker(f"worker{i + 1}") for i in range(workers)]
        if dedicated_applier:
            procs.append(topo.applier())
        time.sleep(3)  # let the workers import the sending stack before the clock starts

        from sqlmodel import Session

        from app.db import get_engine
        from app.services.sending.lifecycle import start_campaign
        from tests.support.sandbox import max_per_window

        started = time.monotonic()
        with Session(get_engine()) as session:
            for campaign in world["campaigns"]:
                start_campaign(session=session, actor=world["admin"], campaign_id=campaign.id)
        harness.wait_for(
            lambda: sum(sb.total() for sb in sandboxes) >= recipients, 3600, "every message sent", interval=0.5
        )
        entries = [sb.entries() for sb in sandboxes]
        stamps = sorted(datetime.fromisoformat(e["at"]).timestamp() for es in entries for e in es)
        seconds = time.monotonic() - started
        first_to_last = stamps[-1] - stamps[0]
        logs = [sb.summary() for sb in sandboxes]

        def applied() -> bool:
            from sqlalchemy import func, select

            from app.models import WebhookStatusEvent

            with Session(get_engine()) as session:
                return not session.execute(
                    select(func.count()).where(WebhookStatusEvent.applied_at.is_(None))
                ).scalar_one()

        drained_at = time.monotonic()
        try:
            harness.wait_for(applied, 120, "status webhooks applied", interval=1.0)
            drained_s = round(time.monotonic() - drained_at, 1)
        except AssertionError:
            drained_s = None
        return {
            "recipients": recipients,
            "cap": cap,
            "workers": workers,
            "applier": "dedicated process" if dedicated_applier else "web processes",
            "seconds": round(seconds, 1),
            "rate": recipients / seconds,
            "rate_first_to_last": recipients / first_to_last,
            "duplicates": sum(len(log["duplicates"]) for log in logs),
            "busiest_1s": [max_per_window(es, 1.0) for es in entries],
            "webhooks_drained_s": drained_s,
            "built_s": round(built_s, 1),
            "load_avg": os.getloadavg()[0],
            "processes_alive": all(p.alive() for p in procs + webs),
        }
    finally:
        topo.stop_all()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--cap", type=int, default=500, help="msg/s cap of each of the two channels")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument(
        "--applier",
        choices=("web", "process"),
        default="web",
        help="who applies the status webhooks: the web processes (default) or a dedicated `hubcast applier`",
    )
    args = parser.parse_args()

    base = None if args.skip_baseline else baseline(args.recipients)
    root = Path(tempfile.mkdtemp(prefix="hubcast-bench-topology-"))
    r = run_topology(args.recipients, args.cap, args.workers, root, args.applier == "process")
    print("topology", json.dumps(r, default=str))
    target = 0.95 * 2 * args.cap
    lines = [
        f"\n## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — {os.cpu_count()} CPU, load {r['load_avg']:.1f}",
        f"{args.recipients:,} recipients over 2 channels capped at {args.cap}/s each (150 ms API latency), "
        f"2 web + {args.workers} workers{' + 1 applier' if args.applier == 'process' else ''} behind nginx, "
        "PostgreSQL + Redis\n",
        "| figure | msg/s | target | seconds | duplicates | busiest 1 s per channel | webhooks applied after | "
        "baseline: bench/dispatch.py, 1 channel at 1,000/s, same run |",
        "|---|---|---|---|---|---|---|---|",
        f"| topology, start to last send | {r['rate']:.0f} ({r['rate_first_to_last']:.0f} first to last send) | "
        f"≥ {target:.0f} | {r['seconds']} | {r['duplicates']} | {r['busiest_1s']} | "
        f"{r['webhooks_drained_s']} s | {f'{base:.0f} msg/s' if base else 'not run'} |",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    if not RESULTS.exists():
        RESULTS.write_text("# Topology benchmark (bench/topology.py)\n\nSee the script's docstring.\n")
    with RESULTS.open("a") as fh:
        fh.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
