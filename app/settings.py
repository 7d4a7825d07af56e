"""All runtime settings, read once from the environment, with embedded defaults.

Defaults make `make run` work on a fresh machine (SQLite file under ./data, an embedded Redis,
a generated secret key kept in ./data). In production (`HUBCAST_ENV=production`) the defaults that
would be unsafe are refused instead of silently used.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(RuntimeError):
    """A setting is missing or unsafe; the message says which and how to fix it."""


def _data_dir() -> Path:
    return Path(os.environ.get("HUBCAST_DATA_DIR", PROJECT_ROOT / "data")).resolve()


def _secret_key(env: str, data_dir: Path) -> str:
    key = os.environ.get("HUBCAST_SECRET_KEY", "").strip()
    if key:
        if len(key) < 32:
            raise SettingsError("HUBCAST_SECRET_KEY must be at least 32 characters")
        return key
    if env == "production":
        raise SettingsError("HUBCAST_SECRET_KEY is required when HUBCAST_ENV=production")
    # Development: generate once and keep it, so sessions survive a restart.
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


@dataclass(frozen=True)
class Settings:
    env: str
    data_dir: Path
    database_url: str
    redis_url: str | None  # None: start/use the embedded Redis
    secret_key: str
    port: int
    public_url: str
    admin_email: str | None
    admin_password: str | None
    upload_dir: Path  # private: CSV uploads never live under Reflex's public upload folder
    session_idle_minutes: int = 60 * 8
    session_absolute_hours: int = 24 * 7
    login_max_failures: int = 5
    login_lockout_seconds: int = 15 * 60
    max_csv_bytes: int = 20 * 1024 * 1024
    extra: dict = field(default_factory=dict)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def load_settings() -> Settings:
    env = os.environ.get("HUBCAST_ENV", "development").strip().lower()
    if env not in {"development", "production", "test"}:
        raise SettingsError(f"HUBCAST_ENV must be development, test or production, not {env!r}")
    data_dir = _data_dir()
    database_url = os.environ.get("DATABASE_URL", "").strip() or f"sqlite:///{data_dir / 'hubcast.db'}"
    if env == "production" and database_url.startswith("sqlite") and not os.environ.get("HUBCAST_ALLOW_SQLITE"):
        raise SettingsError("Production needs DATABASE_URL (PostgreSQL); set HUBCAST_ALLOW_SQLITE=1 to insist on SQLite")
    port = int(os.environ.get("PORT", "8000"))
    return Settings(
        env=env,
        data_dir=data_dir,
        database_url=database_url,
        redis_url=os.environ.get("REDIS_URL", "").strip() or None,
        secret_key=_secret_key(env, data_dir),
        port=port,
        public_url=os.environ.get("HUBCAST_PUBLIC_URL", f"http://localhost:{port}").rstrip("/"),
        admin_email=os.environ.get("HUBCAST_ADMIN_EMAIL", "").strip().lower() or None,
        admin_password=os.environ.get("HUBCAST_ADMIN_PASSWORD") or None,
        upload_dir=Path(os.environ.get("HUBCAST_UPLOAD_DIR", data_dir / "uploads")).resolve(),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()


def reset_settings_cache() -> None:
    """Tests change the environment; this makes the next get_settings() read it again."""
    get_settings.cache_clear()
