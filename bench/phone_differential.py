"""Differential check: the fast phone validator must give phonenumbers' own verdict on every number.

Generates numbers for every region and non-geographic code phonenumbers knows: its example numbers of
every type (valid), then mutations of them (truncated, extended, digits changed, a national prefix
written after the country code) and random digit strings, and compares `app.domain.phone`'s verdict
(fast path, falling back to the library) with `phonenumbers.parse` + `is_valid_number` on each.

    .venv/bin/python bench/phone_differential.py 1000000
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import phonenumbers

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from datetime import UTC

from app.domain import phone

_TYPES = [
    getattr(phonenumbers.PhoneNumberType, n)
    for n in (
        "FIXED_LINE",
        "MOBILE",
        "TOLL_FREE",
        "PREMIUM_RATE",
        "SHARED_COST",
        "VOIP",
        "PERSONAL_NUMBER",
        "PAGER",
        "UAN",
        "VOICEMAIL",
    )
]


def _seeds() -> list[tuple[str, str]]:
    """(country code, national significant number) of every example number the library ships."""
    seeds = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in _TYPES:
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                seeds.append((str(example.country_code), phonenumbers.national_significant_number(example)))
    for cc in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS):
        example = phonenumbers.example_number_for_non_geo_entity(cc)
        if example is not None:
            seeds.append((str(cc), phonenumbers.national_significant_number(example)))
    return seeds


def generate(count: int, seed: int = 2026) -> Iterator[str]:
    """`count` digit strings (what follows the "+"), valid and invalid, deterministic for a seed."""
    rng = random.Random(seed)
    seeds = _seeds()
    codes = sorted({cc for cc, _ in seeds})
    digits = "0123456789"
    produced = 0
    while produced < count:
        cc, nsn = rng.choice(seeds)
        roll = rng.random()
        if roll < 0.25:
            out = cc + nsn
        elif roll < 0.40:  # same shape, other digits: often valid, sometimes not
            keep = rng.randint(1, max(1, len(nsn) // 2))
            out = cc + nsn[:keep] + "".join(rng.choice(digits) for _ in nsn[keep:])
        elif roll < 0.50:
            out = cc + nsn[: -rng.randint(1, 3)]
        elif roll < 0.60:
            out = cc + nsn + "".join(rng.choice(digits) for _ in range(rng.randint(1, 3)))
        elif roll < 0.68:  # a national prefix written after the country code: +44 (0)20 ...
            out = cc + rng.choice(["0", "1", "8", "06", "9", "01"]) + nsn
        elif roll < 0.78:
            pos = rng.randrange(len(nsn))
            out = cc + nsn[:pos] + rng.choice(digits) + nsn[pos + 1 :]
        elif roll < 0.90:
            out = rng.choice(codes) + "".join(rng.choice(digits) for _ in range(rng.randint(2, 13)))
        else:
            out = "".join(rng.choice(digits) for _ in range(rng.randint(6, 15)))
        if 6 <= len(out) <= 15:  # the pre-check's bounds; outside them phonenumbers is never asked
            produced += 1
            yield out


def compare(count: int) -> tuple[int, list[tuple[str, object, object]], float, float]:
    """(numbers checked, disagreements, fast seconds, library seconds)."""
    numbers = list(generate(count))
    started = time.perf_counter()
    fast = [phone._validate_digits(d) for d in numbers]
    fast_s = time.perf_counter() - started
    started = time.perf_counter()
    library = [phone._library_verdict.__wrapped__(d) for d in numbers]
    library_s = time.perf_counter() - started
    diffs = [(d, f, lib) for d, f, lib in zip(numbers, fast, library) if f != lib]
    return len(numbers), diffs, fast_s, library_s


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    checked, diffs, fast_s, library_s = compare(count)
    line = (
        f"{checked:,} numbers: {len(diffs)} disagreements; fast path {fast_s:.1f} s "
        f"({fast_s / checked * 1e6:.2f} µs/number), phonenumbers {library_s:.1f} s "
        f"({library_s / checked * 1e6:.2f} µs/number)"
    )
    print(line)
    from datetime import datetime

    from audience import machine

    results = Path(__file__).resolve().parent / "results" / "phone_differential.md"
    new = not results.exists()
    with open(results, "a", encoding="utf-8") as out:
        if new:
            out.write("# Fast phone validator vs phonenumbers (bench/phone_differential.py)\n\n")
        out.write(f"- {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {machine()}: {line}\n")
    for d, f, lib in diffs[:20]:
        print(f"  +{d}: fast {f} library {lib}")
    sys.exit(1 if diffs else 0)


if __name__ == "__main__":
    main()
