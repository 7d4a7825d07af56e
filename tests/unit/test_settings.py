import pytest

from app.settings import SettingsError, load_settings


@pytest.fixture()
def clean_env(monkeypatch, tmp_path):
    for name in (
        "DATABASE_URL",
        "REDIS_URL",
        "HUBCAST_SECRET_KEY",
        "HUBCAST_ENV",
        "HUBCAST_ALLOW_SQLITE",
        "PORT",
        "HUBCAST_PUBLIC_URL",
        "HUBCAST_ADMIN_EMAIL",
        "HUBCAST_ADMIN_PASSWORD",
        "HUBCAST_UPLOAD_DIR",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HUBCAST_DATA_DIR", str(tmp_path))
    return tmp_path


def test_development_defaults_are_embedded(clean_env):
    s = load_settings()
    assert s.database_url == f"sqlite:///{clean_env / 'hubcast.db'}"
    assert s.redis_url is None  # the supervisor starts the embedded Redis
    assert s.port == 8000 and s.public_url == "http://localhost:8000"
    assert s.upload_dir == clean_env / "uploads"
    assert s.max_csv_bytes == 20 * 1024 * 1024


def test_generated_secret_key_is_kept_across_restarts_and_private(clean_env):
    first = load_settings().secret_key
    assert len(first) >= 32
    assert load_settings().secret_key == first
    assert (clean_env / "secret_key").stat().st_mode & 0o077 == 0


def test_production_refuses_a_missing_secret_key(clean_env, monkeypatch):
    monkeypatch.setenv("HUBCAST_ENV", "production")
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://u@h/db")
    with pytest.raises(SettingsError, match="HUBCAST_SECRET_KEY is required"):
        load_settings()


def test_production_refuses_sqlite_unless_insisted(clean_env, monkeypatch):
    monkeypatch.setenv("HUBCAST_ENV", "production")
    monkeypatch.setenv("HUBCAST_SECRET_KEY", "x" * 40)
    with pytest.raises(SettingsError, match="DATABASE_URL"):
        load_settings()
    monkeypatch.setenv("HUBCAST_ALLOW_SQLITE", "1")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")  # production needs one (issue 13 item 11)
    assert load_settings().is_sqlite


def test_short_secret_key_and_unknown_env_are_refused(clean_env, monkeypatch):
    monkeypatch.setenv("HUBCAST_SECRET_KEY", "short")
    with pytest.raises(SettingsError, match="at least 32"):
        load_settings()
    monkeypatch.setenv("HUBCAST_SECRET_KEY", "y" * 40)
    monkeypatch.setenv("HUBCAST_ENV", "staging")
    with pytest.raises(SettingsError, match="HUBCAST_ENV"):
        load_settings()


def test_port_moves_the_public_url(clean_env, monkeypatch):
    monkeypatch.setenv("PORT", "9123")
    assert load_settings().public_url == "http://localhost:9123"
