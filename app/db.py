"""Database engine and sessions.

One engine per process and URL. SQLite gets WAL and a busy timeout so the web process and the
workers can write to the same file; PostgreSQL gets a pre-ping pool.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, create_engine

from app.settings import get_settings


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


@lru_cache(maxsize=4)
def _engine_for(url: str) -> Engine:
    return make_engine(url)


def get_engine() -> Engine:
    settings = get_settings()
    private_storage(settings.data_dir, settings.database_url)
    return _engine_for(settings.database_url)


@lru_cache(maxsize=4)
def private_storage(data_dir: Path, database_url: str) -> None:
    """The data dir 0700 and the SQLite file 0600 (ASVS V8.1/V14.3: stored data readable by the service
    account only): it holds the database with every contact, the secret key and uploaded CSV files. Done
    once per process before the first connection; SQLite gives its -wal/-shm files the database's mode.
    Only the configured data dir is changed: a database file elsewhere gets 0600, its folder is left alone."""
    # A read-only or foreign data dir (PostgreSQL needs none of it) is not an error here; its files are.
    with contextlib.suppress(OSError):
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        data_dir.chmod(0o700)
    path = sqlite_path(database_url)
    if path is None:
        return
    if path.parent == data_dir or data_dir in path.parents:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.parent.is_dir():
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT, 0o600))  # created private, never widened
        with contextlib.suppress(PermissionError):
            path.chmod(0o600)


def sqlite_path(database_url: str) -> Path | None:
    """The file of a SQLite URL (None for another database or an in-memory one)."""
    url = make_url(database_url)
    if not url.drivername.startswith("sqlite") or not url.database or url.database == ":memory:":
        return None
    return Path(url.database).resolve()


@contextmanager
def session_scope() -> Iterator[Session]:
    """A unit of work: commit on success, roll back on any error."""
    with Session(get_engine(), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
