"""The parallel CSV check (app/services/audiences/csv_parallel.py) must give exactly the sequential reader's CsvCheck:
counts, duplicates across the byte ranges, invalid rows with the file's line numbers, the sample; and must
step aside (same result, same errors) where a byte split would be unsafe."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from app.services.audiences import csv_parallel
from app.services.audiences.csv_reader import CsvRefused, check_csv

FIELDS = (
    "rows",
    "valid",
    "invalid",
    "duplicates",
    "invalid_rows",
    "sample",
    "columns",
    "delimiter",
    "id_column",
    "size_bytes",
)


def sequential(path: Path, monkeypatch) -> object:
    with monkeypatch.context() as m:
        m.setattr(csv_parallel, "PARALLEL_MIN_BYTES", 1 << 62)  # the threshold above which it goes parallel
        return check_csv(path)


def assert_same(a, b) -> None:
    for name in FIELDS:
        assert getattr(a, name) == getattr(b, name), name


def write_audience(path: Path, rows: int, *, newline: str = "\n", seed: int = 3) -> list[str]:
    """Valid numbers, invalid ones, blank lines, short rows, numbers repeated far apart (so across ranges)."""
    rng = random.Random(seed)
    numbers: list[str] = []
    lines = ["phone,first_name,city"]
    for i in range(rows):
        roll = rng.random()
        if roll < 0.03:
            lines.append(rng.choice(["n/a,Ann,Paris", "0612345678,Bo,Lyon", ",Cy,Nice", "+12,Di,Metz"]))
        elif roll < 0.04:
            lines.append("")
        elif roll < 0.05:
            lines.append("+33612345678")  # one value; the header has three
        elif roll < 0.15 and numbers:
            lines.append(f"{rng.choice(numbers)},Dup{i},Caen")
        else:
            french = rng.random() < 0.7
            number = f"+336{rng.randrange(10**7, 10**8)}" if french else f"+4915{rng.randrange(10**8, 10**9)}"
            numbers.append(number)
            lines.append(f"{number},Name{i},City{i % 7}")
    path.write_bytes((newline.join(lines) + newline).encode("utf-8"))
    return numbers


def test_a_big_file_is_checked_in_parallel_with_the_sequential_result(tmp_path, monkeypatch):
    path = tmp_path / "big.csv"
    write_audience(path, 160_000)
    assert path.stat().st_size >= csv_parallel.PARALLEL_MIN_BYTES  # the default threshold applies
    parallel = csv_parallel.check_csv_parallel(path)
    assert parallel is not None  # it did run in parallel
    reference = sequential(path, monkeypatch)
    assert_same(parallel, reference)
    assert_same(check_csv(path), reference)  # what the wizard calls
    assert reference.duplicates > 0 and reference.invalid > 0 and len(reference.sample) == 20


def test_a_number_repeated_in_two_ranges_is_one_duplicate_and_lines_are_the_files(tmp_path, monkeypatch):
    monkeypatch.setattr(csv_parallel, "PARALLEL_MIN_BYTES", 100)
    path = tmp_path / "dup.csv"
    body = (
        ["phone,name"]
        + [f"+3361234{i:04d},n{i}" for i in range(200)]
        + ["oops,bad"]
        + [f"+3361234{i:04d},again{i}" for i in range(50)]
        + ["+33612399999,last"]
    )
    path.write_text("\n".join(body) + "\n", encoding="utf-8")
    header, ranges = csv_parallel.plan(path, 2)
    assert len(ranges) == 2 and ranges[1][2] > 100  # the second range starts deep in the file
    result = csv_parallel.check_csv_parallel(path)
    assert result is not None
    assert (result.rows, result.valid, result.invalid, result.duplicates) == (252, 201, 1, 50)
    assert [(r.line, r.value) for r in result.invalid_rows] == [(202, "oops")]
    assert result.sample[0] == {"phone": "+33612340000", "name": "n0"}
    assert_same(result, sequential(path, monkeypatch))


def test_windows_line_breaks_give_the_same_result(tmp_path, monkeypatch):
    monkeypatch.setattr(csv_parallel, "PARALLEL_MIN_BYTES", 100)
    path = tmp_path / "crlf.csv"
    write_audience(path, 3_000, newline="\r\n", seed=9)
    parallel = csv_parallel.check_csv_parallel(path)
    assert parallel is not None
    assert_same(parallel, sequential(path, monkeypatch))


@pytest.mark.parametrize(
    "content",
    [
        # A quoted value holding a line break: a byte split could land inside it.
        "phone,note\n" + "".join(f'+3361234{i:04d},"line one\nline two"\n' for i in range(300)),
        # A lone carriage return ends a line for the csv module but not for a split on \n.
        "phone,name\r" + "".join(f"+3361234{i:04d},n{i}\r" for i in range(300)),
    ],
)
def test_files_a_byte_split_could_misread_go_through_the_sequential_reader(tmp_path, monkeypatch, content):
    monkeypatch.setattr(csv_parallel, "PARALLEL_MIN_BYTES", 100)
    path = tmp_path / "quoted.csv"
    path.write_text(content, encoding="utf-8", newline="")
    assert csv_parallel.check_csv_parallel(path) is None
    result = check_csv(path)
    assert (result.rows, result.valid) == (300, 300)
    assert_same(result, sequential(path, monkeypatch))


def test_a_problem_in_a_later_range_is_reported_with_the_files_line(tmp_path, monkeypatch):
    monkeypatch.setattr(csv_parallel, "PARALLEL_MIN_BYTES", 100)
    path = tmp_path / "latin1.csv"
    rows = [f"+3361234{i:04d},n{i}".encode() for i in range(400)]
    rows[350] = "+33612340350,Chlo\u00e9".encode("latin-1")  # not UTF-8, in the second half
    path.write_bytes(b"phone,name\n" + b"\n".join(rows) + b"\n")
    with pytest.raises(CsvRefused) as parallel_error:
        check_csv(path)
    assert "line 352" in str(parallel_error.value)
    with pytest.raises(CsvRefused) as sequential_error:
        sequential(path, monkeypatch)
    assert str(parallel_error.value) == str(sequential_error.value)


def test_whole_file_refusals_are_unchanged(tmp_path):
    path = tmp_path / "nophone.csv"
    path.write_text("name,city\n" + "Ann,Paris\n" * 450_000, encoding="utf-8")
    assert path.stat().st_size >= csv_parallel.PARALLEL_MIN_BYTES
    with pytest.raises(CsvRefused, match="No column named phone or id"):
        check_csv(path)
