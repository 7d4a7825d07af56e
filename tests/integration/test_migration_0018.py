"""Migration 0018 turns contacts.custom_fields into jsonb on PostgreSQL without losing a contact's fields or
the terms segment rules read (custom_terms), and rewrites the documents jsonb refuses (an escaped NUL, which
`->>` could not read before either). On a PostgreSQL database of its own; SQLite has nothing to migrate."""

from __future__ import annotations

import uuid

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, make_url, text

from app.settings import PROJECT_ROOT

DOCS = [
    '{"tier": "Gold", "signup": "2026-01-02"}',
    '{"note": "a\\u0000b", "tier": "silver"}',  # jsonb refuses the NUL escape
    '{"t": "A", "t": "B"}',  # duplicate keys: ->> read the last one, jsonb keeps it
    "[]",
]


def _config(url: str) -> Config:
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


@pytest.fixture
def scratch_pg(database_url, monkeypatch):
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: SQLite stores JSON as text either way")
    name = f"hubcast_mig18_{uuid.uuid4().hex[:8]}"
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
    monkeypatch.setenv("DATABASE_URL", url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def _rows(engine):
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT custom_fields::text, pg_typeof(custom_fields)::text, custom_terms FROM contacts ORDER BY id")
        ).all()


def test_custom_fields_become_jsonb_with_the_same_terms_and_back(scratch_pg):
    cfg = _config(scratch_pg)
    command.upgrade(cfg, "0017")
    engine = create_engine(scratch_pg)
    with engine.begin() as conn:
        for doc in DOCS:
            conn.execute(
                text(
                    "INSERT INTO contacts (first_name, last_name, email, country, city, language, custom_fields, "
                    "created_at, updated_at, channel_flags) "
                    "VALUES ('A', 'B', '', '', '', '', CAST(:doc AS json), now(), now(), 0)"
                ),
                {"doc": doc},
            )
    before = _rows(engine)

    command.upgrade(cfg, "0018")
    after = _rows(engine)
    assert {kind for _, kind, _ in after} == {"jsonb"}
    assert after[1][0] == '{"note": "ab", "tier": "silver"}'  # the NUL removed, nothing else
    assert after[2][0] == '{"t": "B"}'
    # The terms "equals" / "is one of" / "is not empty" rules read are the same, so segments count the same.
    assert [sorted(t) for *_, t in after] == [
        sorted(before[0][2]),
        ["4:note", "4:note=ab", "4:tier", "4:tier=silver"],  # before: none (->> could not read the document)
        sorted(before[2][2]),
        [],
    ]
    with engine.connect() as conn:  # a rule's ->> now reads the binary document
        assert conn.execute(text("SELECT count(*) FROM contacts WHERE custom_fields ->> 'tier' = 'Gold'")).scalar() == 1

    command.downgrade(cfg, "0017")
    back = _rows(engine)
    assert {kind for _, kind, _ in back} == {"json"}
    assert [sorted(t) for *_, t in back] == [sorted(t) for *_, t in after]
    engine.dispose()
