"""Read an audience CSV as a stream (SPEC S14), for the campaign wizard and the contact import.

The file is never held in memory (nor in Reflex state): `check_csv` streams it once to count rows and
collect invalid lines for the summary, and `iter_valid_rows` streams it again when the rows are used.
Whole-file problems (too big, not UTF-8, no header, no `phone`/`id` column, tabs, a quote never closed)
raise `CsvRefused` with one message a user can act on; row problems are counted and reported by line.

The rows themselves are read by `csv_scan`; a big file is checked on every core by `csv_parallel`
(same result); this module chooses between the two.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from app.services.audiences.csv_parallel import check_csv_parallel
from app.services.audiences.csv_scan import (
    MAX_CSV_BYTES,
    MAX_INVALID_ROWS_KEPT,
    CsvCheck,
    CsvRefused,
    InvalidRow,
    check_sequential,
    scan_rows,
)

__all__ = [
    "MAX_CSV_BYTES",
    "MAX_INVALID_ROWS_KEPT",
    "CsvCheck",
    "CsvRefused",
    "InvalidRow",
    "check_csv",
    "export_safe",
    "iter_valid_rows",
]


def check_csv(
    path: Path, *, max_bytes: int | None = None, on_progress: Callable[[int, int], None] | None = None
) -> CsvCheck:
    """Stream the file once and summarise it; raises CsvRefused for whole-file problems."""
    path = Path(path)
    parallel = check_csv_parallel(path, max_bytes=max_bytes, on_progress=on_progress)  # big files: all cores
    if parallel is not None:
        return parallel
    return check_sequential(path, max_bytes=max_bytes, on_progress=on_progress)


def iter_valid_rows(path: Path, check: CsvCheck | None = None) -> Iterator[tuple[int, str, dict[str, str]]]:
    """Yield (line, E.164, {column: value}) for each unique valid row; the first occurrence wins."""
    path = Path(path)
    if check is None:
        check = check_csv(path)
    scan = scan_rows(path, max_bytes=max(MAX_CSV_BYTES, check.size_bytes), on_progress=None)
    columns = next(scan).columns
    seen: set[str] = set()
    for line, fields, _value, e164, _reason in scan:
        if e164 is None or e164 in seen:
            continue
        seen.add(e164)
        yield line, e164, dict(zip(columns, fields, strict=False))


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def export_safe(value) -> str:
    """Neutralise spreadsheet formulas in a value we export (OWASP CSV injection): prefix a quote.
    Every CSV Hubcast writes goes through it: the campaign results export and the invalid-rows download."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text
