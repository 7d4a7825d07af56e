"""Apply Alembic migrations from code, so `hubcast migrate` works from any directory."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from app.settings import PROJECT_ROOT, get_settings


def alembic_config(database_url: str | None = None) -> Config:
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    cfg.attributes["database_url"] = database_url or get_settings().database_url
    return cfg


def upgrade_to_head(database_url: str | None = None) -> None:
    url = database_url or get_settings().database_url
    if url.startswith("sqlite:///"):
        from pathlib import Path

        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    if url == get_settings().database_url:  # the app's own database: created private (0600, in a 0700 data dir)
        from app.db import private_storage

        private_storage(get_settings().data_dir, url)
    command.upgrade(alembic_config(url), "head")
