"""Uploaded CSV files, kept on the server in the private upload dir (never Reflex's public /_upload).

`store_upload` copies an uploaded file in chunks to a random name and refuses it as soon as it grows
past the limit: the browser's `max_size` is a hint, this is the check. Only the server-side path is
kept (in a backend-only state var); the contents never enter Reflex state.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from app.settings import get_settings

CHUNK_BYTES = 1024 * 1024
STALE_AFTER_S = 24 * 3600  # an import preview nobody confirmed within a day is dropped
AUDIENCE_PURPOSE = "audiences"  # campaign audiences (app.services.campaigns.drafts.UPLOAD_PURPOSE)
SCRATCH_PURPOSE = "tmp"  # short-lived working copies (the parallel CSV check's part files)


class UploadRefused(ValueError):
    """The upload is refused; the message is shown as is."""


@dataclass(frozen=True)
class StoredUpload:
    path: Path
    original_name: str
    size_bytes: int
    sha256: str


def _folder(purpose: str) -> Path:
    folder = get_settings().upload_dir / purpose
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


@contextmanager
def scratch_dir() -> Iterator[Path]:
    """A private folder (0700, under the upload dir) for working copies of an upload, removed with everything
    in it on exit. Never the system temp dir: that is shared with every other program on the machine, and a
    process killed midway would leave people's phone numbers there."""
    root = _folder(SCRATCH_PURPOSE)
    path = Path(tempfile.mkdtemp(prefix="csv-check-", dir=root))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _limit_text(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MB" if limit % (1024 * 1024) == 0 else f"{limit:,} bytes"


def store_upload(
    source: BinaryIO, *, original_name: str, purpose: str = "imports", max_bytes: int | None = None
) -> StoredUpload:
    """Copy `source` to <upload_dir>/<purpose>/<random>.csv, refusing more than `max_bytes` while reading."""
    limit = get_settings().max_csv_bytes if max_bytes is None else max_bytes
    name = os.path.basename(str(original_name or "").replace("\\", "/"))[:255] or "upload.csv"
    if not name.lower().endswith(".csv"):
        raise UploadRefused(f'"{name}" is not a CSV file; export the sheet as CSV (.csv) and upload that.')
    path = _folder(purpose) / f"{secrets.token_hex(16)}.csv"
    digest, size = hashlib.sha256(), 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := source.read(CHUNK_BYTES):
                size += len(chunk)
                if size > limit:
                    raise UploadRefused(
                        f'"{name}" is larger than {_limit_text(limit)}, the limit for a CSV file; '
                        "split it into smaller files."
                    )
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if size == 0:
        path.unlink(missing_ok=True)
        raise UploadRefused(f'"{name}" is empty.')
    return StoredUpload(path=path, original_name=name, size_bytes=size, sha256=digest.hexdigest())


def owned_path(path: str | Path, purpose: str = "imports") -> Path | None:
    """The path if it is a file we stored for `purpose`, else None (never follow a path from elsewhere)."""
    if not path:
        return None
    candidate = Path(path).resolve()
    folder = (get_settings().upload_dir / purpose).resolve()
    return candidate if candidate.parent == folder and candidate.is_file() else None


def discard(path: str | Path, purpose: str = "imports") -> None:
    owned = owned_path(path, purpose)
    if owned is not None:
        owned.unlink(missing_ok=True)


def sweep_stale(purpose: str = "imports", older_than_s: int = STALE_AFTER_S) -> int:
    """Delete stored uploads older than `older_than_s` (previews that were never confirmed)."""
    folder = get_settings().upload_dir / purpose
    if not folder.is_dir():
        return 0
    cutoff, removed = time.time() - older_than_s, 0
    for item in folder.glob("*.csv"):
        try:
            if item.stat().st_mtime < cutoff:
                item.unlink()
                removed += 1
        except OSError:
            continue
    return removed
