"""Benchmark: checking a 20 MB audience CSV end to end (issue 7 §1), against the naive loop.

Generates a 20 MB CSV (phone + 4 columns, mixed countries, ~2% invalid, ~10% duplicates), then times
what the campaign wizard calls — `check_csv()` and `csv_audience_summary()` — against a baseline measured
in the same run: the `csv` module with `phonenumbers.parse` + `is_valid_number` on every row. Both must
count the same valid numbers. Also reports the checking process's peak RSS. Prints a table and appends
it to bench/results/csv_audience.md.

    .venv/bin/python bench/csv_audience.py [--mb 20] [--runs 3]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import phonenumbers

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from app.services.audience import csv_audience_summary  # noqa: E402
from app.services.csv_reader import MAX_CSV_BYTES, check_csv  # noqa: E402
from audience import machine  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "csv_audience.md"
REGIONS = ["AU", "FR", "DE", "GB", "US", "BR", "IN", "ES", "IT", "NL", "MX", "ZA", "NG", "ID", "JP", "AR", "TR",
           "SE", "PL", "CA", "EG", "KE", "PH", "SG", "AE"]
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
                number = f"+{cc}{nsn}" if style < 0.6 else f"+{cc} {nsn[:3]} {nsn[3:]}" if style < 0.9 else f"00{cc}{nsn}"
                issued.append(number)
            out.writerow([number, rng.choice(FIRST), rng.choice(CITIES), rng.choice(["free", "pro", "team"]),
                          f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"])
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


def timed(fn, runs: int):
    samples, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples), result


def peak_rss_mb(path: Path) -> float:
    """Peak RSS of a fresh process that imports the app's reader and checks the file."""
    code = ("import resource, sys; sys.path.insert(0, %r); from pathlib import Path; "
            "from app.services.csv_reader import check_csv; check_csv(Path(%r)); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)") % (str(ROOT), str(path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip()) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=MAX_CSV_BYTES / 1024 / 1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline-runs", type=int, default=1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "audience.csv"
        rows = generate_csv(path, int(args.mb * 1024 * 1024))
        size = path.stat().st_size
        print(f"generated {size / 1024 / 1024:.1f} MB, {rows:,} rows")
        fast_s, fast = timed(lambda: ours(path), args.runs)
        print(f"  check_csv + summary: {fast_s:.2f} s  {fast}")
        slow_s, slow = timed(lambda: baseline(path), args.baseline_runs)
        print(f"  baseline (csv + phonenumbers): {slow_s:.2f} s  {slow}")
        agree = (fast["rows"], fast["valid"]) == (slow["rows"], slow["valid"])
        rss = peak_rss_mb(path)
        print(f"  peak RSS of a process checking the file: {rss:.0f} MB; same valid count as the baseline: {agree}")

    table = "\n".join([
        f"## {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {machine()}",
        f"File: {size / 1024 / 1024:.1f} MB, {rows:,} rows (phone + 4 columns, {len(REGIONS)} countries, ~2% invalid, "
        f"~10% duplicates). Median of {args.runs} runs (baseline: {args.baseline_runs}). Target: ≤ 2 s.",
        "",
        "| figure | measured | baseline | speed-up |",
        "|---|---:|---:|---:|",
        f"| check + summary (s) | {fast_s:.2f} | {slow_s:.2f} | {slow_s / fast_s:.1f}x |",
        f"| µs per row | {fast_s / rows * 1e6:.1f} | {slow_s / rows * 1e6:.1f} | |",
        f"| peak RSS of the checking process (MB) | {rss:.0f} | | |",
        "",
        f"Counts: {json.dumps(fast)}; baseline {json.dumps(slow)}; valid counts agree: {agree}.",
        "",
    ])
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
