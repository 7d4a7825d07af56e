"""The Alembic history builds exactly the schema app/models.py declares, on SQLite and PostgreSQL."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

import app.models  # noqa: F401
from app.db import get_engine


def test_migrated_schema_matches_the_models(database_url):
    with get_engine().connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == [], f"models and migrations disagree; run `alembic revision --autogenerate`: {diff}"


def test_uniqueness_rules_exist_in_the_database(database_url):
    insp = inspect(get_engine())

    def uniques(table):
        found = {tuple(u["column_names"]) for u in insp.get_unique_constraints(table)}
        found |= {tuple(i["column_names"]) for i in insp.get_indexes(table) if i.get("unique")}
        return found

    assert ("channel_type", "address") in uniques("contact_identities")
    assert ("channel_id", "name", "language") in uniques("templates")
    assert ("campaign_id", "address") in uniques("campaign_recipients")
    assert ("message_id", "status") in uniques("webhook_status_events")
    assert ("email",) in uniques("users")
