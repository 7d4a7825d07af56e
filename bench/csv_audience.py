"""Benchmark: checking a 20 MB audience CSV end to end (issue 7 §1), against the naive loop.

Generates a 20 MB CSV (phone + 4 columns, mixed countries, ~2% invalid, ~10% duplicates), then times
what the campaign wizard calls — `check_csv()` and `csv_audience_summary()` — against a baseline measured
in the same run: the `csv` module with `phonenumbers.parse` + `is_valid_number` on every row. Both must
count the same valid numbers. Also times the same service on one core (the parallel path switched off),
reports CPU seconds (this process and the worker processes: on a loaded machine they show what an idle one
would do), and the peak RSS of a fresh process doing the wizard's check, of its workers and of the whole
tree. `--profile` prints a cProfile of the one-core check. Prints a table and appends it to
bench/results/csv_audience.md.

    .venv/bin/python bench/csv_audience.py [--mb 20] [--runs 3] [--profile]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import phonenumbers

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from audience import machine  # noqa: E402

from app.services.audiences import csv_parallel  # noqa: E402
from app.services.audiences.csv_reader import MAX_CSV_BYTES, check_csv  # noqa: E402
from app.services.audiences.summary import csv_audience_summary  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "csv_audience.md"
REGIONS = [
    "AU",
    "FR",
    "DE",
    "GB",
    "US",
    "BR",
    "IN",
    "ES",
    "IT",
    "NL",
    "MX",
    "ZA",
    "NG",
    "ID",
    "JP",
    "AR",
    "TR",
    "SE",
    "PL",
    "CA",
    "EG",
    "KE",
    "PH",
    "SG",
    "AE",
]
FIRST = ["Ann", "Bruno", "Chloé", "Dmitri", "Eva", "Farid", "Grace", "Hiro", "Ines", "José", "Kemi", "Lars"]
CITIES = ["Sydney", "Paris", "Berlin", "London", "New York", "São Paulo", "Mumbai", "Madrid", "Lagos", "Tokyo"]


def generate_csv(path: Path, size: int, seed: int = 7) -> int:
    rng = random.Random(seed)
    templates = []
    for region in REGIONS:
        for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                templates.append((example.country_code, phonenumbers.national_significant_number(example)))
    bad = ["0412345678", "n/a", "", "+12", "0033 6 12", "call me", "612345678"]
    issued: list[str] = []
    rows = 0
    with open(path, "w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow(["phone", "first_name", "city", "plan", "signup"])
        while f.tell() < size - 200:
            roll = rng.random()
            if roll < 0.02:
                number = rng.choice(bad)
            elif roll < 0.12 and issued:
                number = rng.choice(issued)
            else:
                cc, nsn = rng.choice(templates)
                tail = min(6, len(nsn) - 2)
                nsn = nsn[:-tail] + "".join(rng.choice("0123456789") for _ in range(tail))
                style = rng.random()
                number = (
                    f"+{cc}{nsn}" if style < 0.6 else f"+{cc} {nsn[:3]} {nsn[3:]}" if style < 0.9 else f"00{cc}{nsn}"
                )
                issued.append(number)
            out.writerow(
                [
                    number,
                    rng.choice(FIRST),
                    rng.choice(CITIES),
                    rng.choice(["free", "pro", "team"]),
                    f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                ]
            )
            rows += 1
    return rows


def baseline(path: Path) -> dict:
    """The naive loop: csv.DictReader + phonenumbers on every row."""
    rows = valid = 0
    seen: set[str] = set()
    with open(path, encoding="utf-8-sig", newline="") as f:
        for row in csv.DictReader(f):
            rows += 1
            value = row["phone"].strip()
            if value.startswith("00"):  # the same reading of the international prefix as ours
                value = "+" + value[2:]
            try:
                number = phonenumbers.parse(value, None)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_valid_number(number):
                e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
                if e164 not in seen:
                    seen.add(e164)
                    valid += 1
    return {"rows": rows, "valid": valid}


def ours(path: Path) -> dict:
    summary = csv_audience_summary(check_csv(path))
    return {"rows": summary.total, "valid": summary.reach, "invalid": summary.invalid, "duplicates": summary.duplicates}


def ours_one_core(path: Path) -> dict:
    """The same service with the parallel path switched off (its size threshold): the one-core figure."""
    saved = csv_parallel.PARALLEL_MIN_BYTES
    csv_parallel.PARALLEL_MIN_BYTES = 1 << 62
    try:
        return ours(path)
    finally:
        csv_parallel.PARALLEL_MIN_BYTES = saved


def _cpu() -> tuple[float, float]:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


def timed(fn, runs: int):
    """(median wall s, result, median CPU s of this process, median CPU s of its child processes)."""
    samples, own, child, result = [], [], [], None
    for _ in range(runs):
        cpu0 = _cpu()
        started = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - started)
        cpu1 = _cpu()
        own.append(cpu1[0] - cpu0[0])
        child.append(cpu1[1] - cpu0[1])
    return statistics.median(samples), result, statistics.median(own), statistics.median(child)


# Run in a fresh process: the wizard's call (check + summary) while a thread samples the RSS of the process
# and its children (psutil when installed, else /proc); ru_maxrss gives the exact peaks of each.
_RSS_PROBE = r"""
import json, os, resource, sys, threading, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from app.services.audiences.summary import csv_audience_summary
from app.services.audiences.csv_reader import check_csv

def tree_rss():
    try:
        import psutil
        me = psutil.Process()
        total = me.memory_info().rss
        for child in me.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                pass
        return total
    except ImportError:
        pids = [os.getpid()]
        try:
            pids += [int(p) for p in open(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read().split()]
        except OSError:
            pass
        total = 0
        for pid in pids:
            try:
                total += int(open(f"/proc/{pid}/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            except OSError:
                pass
        return total

peak, stop = [tree_rss()], threading.Event()
def sample():
    while not stop.is_set():
        peak.append(tree_rss())
        time.sleep(0.01)
before = peak[0]
thread = threading.Thread(target=sample, daemon=True)
thread.start()
csv_audience_summary(check_csv(Path(sys.argv[2])))
stop.set()
thread.join()
print(json.dumps({"before_mb": before / 2**20, "tree_peak_mb": max(peak) / 2**20,
                  "self_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "child_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def peak_rss(path: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _RSS_PROBE, str(ROOT), str(path)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def profile(path: Path, top: int = 12) -> str:
    """cProfile of the one-core check: where the time per row goes."""
    import cProfile
    import io
    import pstats

    prof = cProfile.Profile()
    prof.runcall(ours_one_core, path)
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
    return buf.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=MAX_CSV_BYTES / 1024 / 1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline-runs", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of the one-core check")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "audience.csv"
        rows = generate_csv(path, int(args.mb * 1024 * 1024))
        size = path.stat().st_size
        print(f"generated {size / 1024 / 1024:.1f} MB, {rows:,} rows")
        cold_started = time.perf_counter()
        ours(path)  # the first call in a process (imports, compiled validators), reported on its own
        cold_s = time.perf_counter() - cold_started
        fast_s, fast, fast_cpu, fast_child_cpu = timed(lambda: ours(path), args.runs)
        print(
            f"  check_csv + summary (all cores): {fast_s:.2f} s (first call {cold_s:.2f} s; CPU here "
            f"{fast_cpu:.2f} s + children {fast_child_cpu:.2f} s)  {fast}"
        )
        one_s, one, one_cpu, _ = timed(lambda: ours_one_core(path), args.runs)
        print(f"  check_csv + summary (one core): {one_s:.2f} s (CPU {one_cpu:.2f} s)  {one}")
        slow_s, slow, slow_cpu, _ = timed(lambda: baseline(path), args.baseline_runs)
        print(f"  baseline (csv + phonenumbers): {slow_s:.2f} s (CPU {slow_cpu:.2f} s)  {slow}")
        agree = (fast["rows"], fast["valid"]) == (slow["rows"], slow["valid"]) and fast == one
        rss = peak_rss(path)
        print(f"  peak RSS while checking: {json.dumps(rss)}; same valid count as the baseline: {agree}")
        if args.profile:
            print(profile(path))
    load_after = os.getloadavg()[0]
    busiest = max(fast_cpu, fast_child_cpu / max(1, csv_parallel.workers() - 1))  # one range here, one per child

    table = "\n".join(
        [
            f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            "",
            f"Machine: {machine()} (load average {load_before:.1f} at the start, {load_after:.1f} at the end)",
            f"File: {size / 1024 / 1024:.1f} MB, {rows:,} rows (phone + 4 columns, {len(REGIONS)} countries, ~2% invalid, "
            f"~10% duplicates). Median of {args.runs} runs (baseline: {args.baseline_runs}). Target: ≤ 2 s.",
            "",
            "| figure | measured | baseline | speed-up |",
            "|---|---:|---:|---:|",
            f"| check + summary, all cores (s) | {fast_s:.2f} | {slow_s:.2f} | {slow_s / fast_s:.1f}x |",
            f"| check + summary, one core (s) | {one_s:.2f} | {slow_s:.2f} | {slow_s / one_s:.1f}x |",
            f"| all cores vs one core | | | {one_s / fast_s:.2f}x |",
            f"| first call in a fresh process (s) | {cold_s:.2f} | | |",
            f"| CPU s, all cores (this process + worker processes) | {fast_cpu:.2f} + {fast_child_cpu:.2f} | "
            f"{slow_cpu:.2f} | {slow_cpu / (fast_cpu + fast_child_cpu):.1f}x |",
            f"| CPU s, one core | {one_cpu:.2f} | {slow_cpu:.2f} | {slow_cpu / one_cpu:.1f}x |",
            # On a loaded machine wall times stretch; the busier process's CPU time is what an idle 2-core one waits.
            f"| CPU s of the busiest process (≈ wall s on an idle machine) | {busiest:.2f} | {slow_cpu:.2f} | "
            f"{slow_cpu / busiest:.1f}x |",
            f"| µs per row (all cores) | {fast_s / rows * 1e6:.1f} | {slow_s / rows * 1e6:.1f} | |",
            f"| peak RSS of the checking process (MB) | {rss['self_peak_mb']:.0f} | | |",
            f"| peak RSS of one worker process (MB) | {rss['child_peak_mb']:.0f} | | |",
            f"| peak RSS of the whole process tree, sampled every 10 ms (MB) | {rss['tree_peak_mb']:.0f} "
            f"(before: {rss['before_mb']:.0f}) | | |",
            "",
            f"Counts: {json.dumps(fast)}; one core {json.dumps(one)}; baseline {json.dumps(slow)}; "
            f"valid counts agree: {agree}.",
            "",
        ]
    )
    print()
    print(table)
    new = not RESULTS.exists()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with open(RESULTS, "a", encoding="utf-8") as out:
        if new:
            out.write("# CSV audience check benchmark (bench/csv_audience.py)\n\n")
        out.write(table + "\n")
    if not agree:
        sys.exit(1)


if __name__ == "__main__":
    main()
