"""INSERT .. ON CONFLICT DO NOTHING, for the inbound tables whose unique keys absorb Meta's redeliveries."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session


def insert_ignoring_duplicates(session: Session, table):
    """INSERT .. ON CONFLICT DO NOTHING for the session's dialect (SQLite: INSERT OR IGNORE semantics)."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return insert(table).on_conflict_do_nothing()
