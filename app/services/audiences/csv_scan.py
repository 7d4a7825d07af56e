"""The audience CSV row reader (SPEC S14): header, separator, encoding and per-row verdicts, in one pass.

`scan_rows` is the one code path that reads rows: the sequential check (`check_sequential`), each range
of the parallel check (`csv_parallel`) and `csv_reader.iter_valid_rows` all use it. Callers use
`app.services.audiences.csv_reader`, which picks the sequential or the parallel check.
Whole-file problems (too big, not UTF-8, no header, no `phone`/`id` column, tabs, a quote never closed)
raise `CsvRefused` with one message a user can act on; row problems are counted and reported by line.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from app.domain.phone import normalise_phone
from app.settings import MAX_CSV_BYTES

MAX_INVALID_ROWS_KEPT = 10_000
SAMPLE_ROWS = 20
ID_COLUMNS = ("phone", "id")  # preference order when a file has both
_PROGRESS_EVERY_ROWS = 20_000

# A long unquoted value is data, but csv's default limit (128 KiB) would abort the whole file on it.
csv.field_size_limit(MAX_CSV_BYTES)


class CsvRefused(ValueError):
    """The whole file is refused; the message says why and is shown as is."""


@dataclass(frozen=True)
class InvalidRow:
    line: int
    value: str
    reason: str


@dataclass
class CsvCheck:
    delimiter: str
    columns: list[str]
    id_column: str
    rows: int = 0
    valid: int = 0
    invalid: int = 0
    duplicates: int = 0
    invalid_rows: list[InvalidRow] = field(default_factory=list)
    sample: list[dict[str, str]] = field(default_factory=list)
    size_bytes: int = 0

    @property
    def delimiter_name(self) -> str:
        return "semicolon" if self.delimiter == ";" else "comma"

    @property
    def id_index(self) -> int:
        return [c.lower() for c in self.columns].index(self.id_column)

    @property
    def id_column_name(self) -> str:
        """The identifier column as the header spells it (the key in row dicts), e.g. "Phone"."""
        return self.columns[self.id_index]


def _human(size: int) -> str:
    mib = 1024 * 1024
    if size >= mib:
        return f"{size // mib} MB" if size % mib == 0 else f"{size / mib:.1f} MB"
    if size >= 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size} bytes"


def _refuse_size(size: int, limit: int) -> None:
    if size == 0:
        raise CsvRefused("The file is empty")
    if size > limit:
        shown, limit_txt = _human(size), _human(limit)
        if shown in (limit_txt, limit_txt.replace(" MB", ".0 MB")):  # 20 MB + 1 byte must not read "20.0 MB"
            shown, limit_txt = f"{size:,} bytes", f"{limit_txt} ({limit:,} bytes)"
        raise CsvRefused(f"File is {shown}; the limit is {limit_txt}")


def _check_encoding_start(head: bytes) -> None:
    # UTF-16 without a BOM pairs every ASCII character with a NUL byte: it would "decode" as UTF-8 full of NULs.
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or (
        len(head) == 4 and (head[1::2] == b"\0\0" or head[0::2] == b"\0\0")
    ):
        raise CsvRefused('The file is UTF-16 text; save it as "CSV UTF-8" and upload it again')


@contextmanager
def _open_text(path: Path) -> Iterator[tuple[io.TextIOWrapper, io.BufferedReader]]:
    """UTF-8 with or without BOM ("utf-8-sig" drops the BOM); decoding errors surface while reading."""
    with open(path, "rb") as raw:
        _check_encoding_start(raw.peek(4)[:4])
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="strict", newline="")
        yield text, raw


def _first_bad_line(path: Path) -> int:
    """The decoder reads ahead in chunks, so find the exact line again (only on this error path)."""
    with open(path, "rb") as raw:
        for number, data in enumerate(raw, start=1):
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 1


def _not_utf8(path: Path) -> CsvRefused:
    return CsvRefused(
        f"The file is not UTF-8 text (first bad character on line {_first_bad_line(path)}); "
        'save it as "CSV UTF-8" and upload it again'
    )


def _detect_delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in (",", ";", "\t", "|")}
    if counts[","] == 0 and counts[";"] == 0:
        if counts["\t"]:
            raise CsvRefused("Only comma or semicolon separators are supported (found tabs)")
        if counts["|"]:
            raise CsvRefused("Only comma or semicolon separators are supported (found |)")
        return ","  # a single-column file
    # The header names `phone`/`id`: prefer the delimiter that makes one of them a column of its own.
    for delim in sorted((",", ";"), key=lambda d: -counts[d]):
        names = [c.strip().lower() for c in next(csv.reader([header_line], delimiter=delim), [])]
        if any(n in ID_COLUMNS for n in names):
            return delim
    return "," if counts[","] >= counts[";"] else ";"


def _header(columns: list[str]) -> tuple[list[str], str]:
    columns = [c.strip() for c in columns]
    lowered = [c.lower() for c in columns]
    seen: set[str] = set()
    for name in lowered:
        if name and name in seen:
            raise CsvRefused(f'The header names the column "{name}" twice; column names must be unique')
        seen.add(name)
    for wanted in ID_COLUMNS:
        if wanted in lowered:
            return columns, wanted
    if any(normalise_phone(c)[0] or (c.strip().lstrip("+").replace(" ", "").isdigit()) for c in columns):
        raise CsvRefused(
            "Header row missing: the first line holds data; add a first line naming the columns, "
            "with one named phone or id"
        )
    shown = ", ".join(c for c in columns if c)[:200] or "none"
    raise CsvRefused(f"No column named phone or id (columns found: {shown})")


_NUL_MESSAGE = 'the file holds a NUL character (binary data, not text); save it as "CSV UTF-8" and upload it again'


class _NulFound(Exception):
    pass


def _refuse_nul(lines: Iterator[str]) -> Iterator[str]:
    """A NUL is no text, and PostgreSQL refuses it in any text or JSON value: refuse the file, by line."""
    for line in lines:
        if "\0" in line:
            raise _NulFound
        yield line


@dataclass(frozen=True)
class _Header:
    delimiter: str
    columns: list[str]
    id_column: str
    size: int


def scan_rows(path: Path, *, max_bytes: int | None, on_progress: Callable[[int, int], None] | None) -> Iterator:
    """Yield a _Header, then (line, fields, value, e164, reason) per data row (blank lines skipped).

    The loop is the hot path of a 20 MB check (~400,000 rows): plain tuples, no per-row objects."""
    limit = MAX_CSV_BYTES if max_bytes is None else max_bytes
    size = path.stat().st_size
    _refuse_size(size, limit)
    with _open_text(path) as (text, raw):
        try:
            first = text.readline()
        except UnicodeDecodeError:
            raise _not_utf8(path) from None
        if not first.strip():
            raise CsvRefused("Header row missing: the first line is blank")
        if "\0" in first:
            raise CsvRefused(f"Line 1: {_NUL_MESSAGE}")
        delimiter = _detect_delimiter(first)
        # Re-read the header through csv so a quoted header with the delimiter inside still parses.
        columns, id_column = _header(next(csv.reader([first], delimiter=delimiter)))
        yield _Header(delimiter, columns, id_column, size)
        idx = [c.lower() for c in columns].index(id_column)
        width = len(columns)
        reader = csv.reader(_refuse_nul(text), delimiter=delimiter, strict=True)
        last_line = 1  # reader.line_num counts physical lines read after the header
        count = 0
        normalise = normalise_phone
        try:
            for fields in reader:
                start, last_line = last_line + 1, reader.line_num + 1
                n = len(fields)
                if n == width:
                    value = fields[idx]
                    if not value and not "".join(fields).strip():
                        continue  # a row of empty cells, as spreadsheets export
                    e164, reason = normalise(value)
                else:
                    if n <= 1 and not (fields and fields[0].strip()):
                        continue  # a blank line
                    value = fields[idx] if idx < n else ""
                    e164, reason = None, f"Row has {n} values; the header has {width}"
                count += 1
                if on_progress is not None and count % _PROGRESS_EVERY_ROWS == 0:
                    on_progress(raw.tell(), size)
                yield start, fields, value, e164, reason
        except UnicodeDecodeError:
            raise _not_utf8(path) from None
        except _NulFound:
            raise CsvRefused(f"Line {reader.line_num + 2}: {_NUL_MESSAGE}") from None
        except csv.Error as exc:
            if "end of data" in str(exc):
                raise CsvRefused(f"Line {last_line + 1}: a quote opens a value that is never closed") from None
            raise CsvRefused(f"Line {last_line + 1}: the row is not valid CSV ({exc})") from None
        if on_progress is not None:
            on_progress(size, size)


def check_sequential(
    path: Path, *, max_bytes: int | None = None, on_progress: Callable[[int, int], None] | None = None
) -> CsvCheck:
    """Stream the file once, in order, and summarise it; raises CsvRefused for whole-file problems."""
    path = Path(path)
    scan = scan_rows(path, max_bytes=max_bytes, on_progress=on_progress)
    header = next(scan)
    columns = header.columns
    check = CsvCheck(delimiter=header.delimiter, columns=columns, id_column=header.id_column, size_bytes=header.size)
    seen: set[str] = set()
    rows = invalid = duplicates = 0
    invalid_rows, sample = check.invalid_rows, check.sample
    for line, fields, value, e164, reason in scan:
        rows += 1
        if e164 is None:
            invalid += 1
            if len(invalid_rows) < MAX_INVALID_ROWS_KEPT:
                invalid_rows.append(InvalidRow(line, value[:100], reason or "Not a valid phone number"))
        elif e164 in seen:
            duplicates += 1
        else:
            seen.add(e164)
            if len(sample) < SAMPLE_ROWS:
                sample.append(dict(zip(columns, fields, strict=False)))
    if rows == 0:
        raise CsvRefused("The file has a header row but no data rows")
    check.rows, check.valid, check.invalid, check.duplicates = rows, len(seen), invalid, duplicates
    return check
