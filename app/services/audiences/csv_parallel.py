"""Check a big audience CSV on every core (issue 7 §1): the same rows, verdicts and summary as the
sequential check (`csv_scan.check_sequential`), in about half the time on a 2-core server.

How: the data lines are split into byte ranges that end on a line break; each range is checked in a worker
process by the very same row reader (`csv_scan.scan_rows`, run on a small file made of the header line and
that range, so blank lines, short rows and verdicts follow one code path); the parent merges the counts,
the unique numbers (a number repeated across two ranges is a duplicate once merged), the invalid rows (in
file order, line numbers shifted back) and the sample (the first unique valid rows of the file).

A byte range may only end where the CSV reader is outside any quoted value, which only a full parse can
tell once quotes are present, so files with any `"` — or with line breaks other than \\n and \\r\\n — go
through the sequential reader, as do small files (processes cost more than they save) and any file a
worker finds a problem in (the sequential reader then reports it with its usual message and line).

One range is checked in the calling process, the others each in a fresh interpreter (see `_run`).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.services.audiences import uploads
from app.services.audiences.csv_scan import (
    MAX_INVALID_ROWS_KEPT,
    SAMPLE_ROWS,
    CsvCheck,
    CsvRefused,
    InvalidRow,
    scan_rows,
)

# A worker's start (interpreter, imports, compiling the validators) costs about the CPU of checking 2 MB, so
# below ~4 MB two processes finish no sooner than one (bench/csv_audience.py, --mb 3: 0.43 s vs 0.40 s CPU).
PARALLEL_MIN_BYTES = 4 * 1024 * 1024
WORKER_TIMEOUT_S = 300  # far beyond a 20 MB range (about a second); past it the file is read in order instead
_NO_LIMIT = 1 << 62
_ROOT = str(Path(__file__).resolve().parents[3])  # so `-m app.services...` imports this checkout


def workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclass
class _Part:
    """What a worker reports for one byte range; line numbers are already the file's own."""

    rows: int
    invalid: int
    valid_rows: int
    unique: set[str]
    invalid_rows: list[tuple[int, str, str]]
    # In-range first occurrences, enough to fill the file's sample whatever the earlier ranges held:
    # one is only dropped when an earlier range had its number, and those hold < SAMPLE_ROWS numbers
    # whenever the sample still needs rows from this range.
    candidates: list[tuple[str, list[str]]]


def _check_range(path: str, header: bytes, start: int, end: int, first_line: int, tmp_dir: str) -> _Part:
    with open(path, "rb") as f:
        f.seek(start)
        body = f.read(end - start)
    fd, tmp = tempfile.mkstemp(prefix="hubcast-csv-part-", suffix=".csv", dir=tmp_dir)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(header)
            out.write(body)
        del body
        scan = scan_rows(Path(tmp), max_bytes=_NO_LIMIT, on_progress=None)
        next(scan)
        shift = first_line - 2  # the part file's line 2 is the range's first line
        unique: set[str] = set()
        add = unique.add
        rows = invalid = valid_rows = 0
        invalid_rows: list[tuple[int, str, str]] = []
        candidates: list[tuple[str, list[str]]] = []
        for line, fields, value, e164, reason in scan:
            rows += 1
            if e164 is None:
                invalid += 1
                if len(invalid_rows) < MAX_INVALID_ROWS_KEPT:
                    invalid_rows.append((line + shift, value[:100], reason or "Not a valid phone number"))
                continue
            valid_rows += 1
            if len(candidates) < 2 * SAMPLE_ROWS and e164 not in unique:
                candidates.append((e164, fields))
            add(e164)
        return _Part(rows, invalid, valid_rows, unique, invalid_rows, candidates)
    finally:
        os.unlink(tmp)


def plan(path: Path, parts: int) -> tuple[bytes, list[tuple[int, int, int]]] | None:
    """(header line bytes, [(start, end, first line number)]) or None when the file must be read in order."""
    data = path.read_bytes()
    if b'"' in data or data.count(b"\r") != data.count(b"\r\n"):
        return None
    header_end = data.find(b"\n") + 1
    if header_end <= 0 or header_end >= len(data):
        return None
    ranges = []
    start, line = header_end, 2
    step = max(1, (len(data) - header_end) // parts)
    while start < len(data):
        end = data.find(b"\n", min(len(data) - 1, start + step)) + 1 or len(data)
        ranges.append((start, end, line))
        line += data.count(b"\n", start, end)
        start = end
    return data[:header_end], ranges


def check_csv_parallel(
    path: Path, *, max_bytes: int | None = None, on_progress: Callable[[int, int], None] | None = None
) -> CsvCheck | None:
    """The CsvCheck of `path` computed on every core, or None when the sequential reader must do it
    (small file, one core, quotes, problems in the file). Whole-file refusals of the header step are raised."""
    path = Path(path)
    count = workers()
    if count < 2:
        return None
    # The header step of the sequential reader: size limit, encoding, header, delimiter, id column.
    scan = scan_rows(path, max_bytes=max_bytes, on_progress=None)
    header = next(scan)
    scan.close()
    if header.size < PARALLEL_MIN_BYTES:
        return None
    planned = plan(path, count)
    if planned is None:
        return None
    header_bytes, ranges = planned
    try:
        parts = _run(path, header_bytes, ranges, header.size, on_progress)
    except CsvRefused:
        return None  # the sequential reader reports it, with the file's own line number
    except (OSError, subprocess.SubprocessError):
        return None  # no temporary space, no process to start, a worker stuck: the sequential reader needs none
    return _merge(header, parts)


def _run(
    path: Path,
    header_bytes: bytes,
    ranges: list[tuple[int, int, int]],
    size: int,
    on_progress: Callable[[int, int], None] | None,
) -> list[_Part]:
    """Range 0 here, the others in fresh interpreters (`python -m app.services.audiences.csv_parallel`), one per range.

    Fresh processes rather than a fork of this one: the app calls us from a thread of an asyncio server,
    whose locks and open database connections a forked child would inherit.

    Part files go to a private scratch folder under the upload dir (removed with whatever a killed worker
    left in it), never the system temp dir (issue 13 item 13)."""
    with uploads.scratch_dir() as scratch:
        return _run_in(path, header_bytes, ranges, size, on_progress, str(scratch))


def _run_in(
    path: Path,
    header_bytes: bytes,
    ranges: list[tuple[int, int, int]],
    size: int,
    on_progress: Callable[[int, int], None] | None,
    tmp_dir: str,
) -> list[_Part]:
    children = []
    try:
        for start, end, line in ranges[1:]:
            child = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    __name__,
                    str(path),
                    str(len(header_bytes)),
                    str(start),
                    str(end),
                    str(line),
                    tmp_dir,
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                stdin=subprocess.DEVNULL,
                cwd=_ROOT,
            )
            children.append(child)
        first = _check_range(str(path), header_bytes, *ranges[0], tmp_dir)
        if on_progress is not None:
            on_progress(ranges[0][1], size)
        parts = [first]
        for child, (_start, end, _line) in zip(children, ranges[1:], strict=True):
            out, _ = child.communicate(timeout=WORKER_TIMEOUT_S)
            if child.returncode != 0:
                raise CsvRefused("a part of the file could not be checked")
            parts.append(pickle.loads(out))
            if on_progress is not None:
                on_progress(end, size)
        return parts
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()


def _merge(header, parts: list[_Part]) -> CsvCheck | None:
    check = CsvCheck(
        delimiter=header.delimiter, columns=header.columns, id_column=header.id_column, size_bytes=header.size
    )
    seen: set[str] = set()
    valid_rows = 0
    for part in parts:
        check.rows += part.rows
        check.invalid += part.invalid
        valid_rows += part.valid_rows
        room = MAX_INVALID_ROWS_KEPT - len(check.invalid_rows)
        check.invalid_rows.extend(InvalidRow(*row) for row in part.invalid_rows[:room])
        for e164, fields in part.candidates:
            if len(check.sample) >= SAMPLE_ROWS:
                break
            if e164 not in seen:
                check.sample.append(dict(zip(header.columns, fields, strict=False)))
                seen.add(e164)
        seen |= part.unique
    if check.rows == 0:
        return None  # the sequential reader refuses it with its own message
    check.valid = len(seen)
    check.duplicates = valid_rows - check.valid
    return check


def _worker_main(argv: list[str]) -> int:
    """`python -m app.services.audiences.csv_parallel PATH HEADER_LEN START END FIRST_LINE TMP_DIR`: the pickled
    _Part on stdout; exit code 3 when the range has a problem the sequential reader will report."""
    path, header_len, start, end, first_line, tmp_dir = argv
    with open(path, "rb") as f:
        header = f.read(int(header_len))
    try:
        part = _check_range(path, header, int(start), int(end), int(first_line), tmp_dir)
    except CsvRefused:
        return 3
    sys.stdout.buffer.write(pickle.dumps(part, protocol=pickle.HIGHEST_PROTOCOL))
    return 0


if __name__ == "__main__":
    # Through the module's real name, so the pickled _Part names app.services.audiences.csv_parallel, not __main__.
    from app.services.audiences.csv_parallel import _worker_main as worker_main

    sys.exit(worker_main(sys.argv[1:]))
