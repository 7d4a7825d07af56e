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


# The largest CSV file accepted (the campaign wizard's audience, the contact import): checked on the server
# while the upload is copied and again while it is read; the browser is told too, as a hint.
MAX_CSV_BYTES = 20 * 1024 * 1024


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
    max_csv_bytes: int = MAX_CSV_BYTES
    extra: dict = field(default_factory=dict)
    # Production operation (README "Deploying"):
    metrics_token: str = ""  # HUBCAST_METRICS_TOKEN: /metrics answers only with it (empty: /metrics refused)
    log_format: str = "text"  # HUBCAST_LOG_FORMAT: text | json (one JSON object per line)
    web_workers: int = 1  # HUBCAST_WEB_WORKERS: server processes per `hubcast web`
    # Wiring between Hubcast's own processes (defaults suit one machine):
    sandbox_url: str = "http://127.0.0.1:8001"  # HUBCAST_SANDBOX_URL: where the demo's Sandbox channel points
    api_url: str = ""  # HUBCAST_API_URL: the backend URL the browser uses (default: public_url)
    extra_origins: tuple[str, ...] = ()  # HUBCAST_EXTRA_ORIGINS: more browser origins allowed (comma-separated)
    granian_workers: int | None = None  # GRANIAN_WORKERS: `hubcast run`'s web backend processes (default: cores)
    send_profile_dir: str = ""  # HUBCAST_SEND_PROFILE_DIR: send jobs write a cProfile here (benchmarks)
    # HUBCAST_UPLOAD_RETENTION_DAYS: an audience CSV is deleted this long after its campaigns ended (sent,
    # cancelled, deleted); decimals allowed (tests use seconds' worth).
    upload_retention_days: float = 30.0

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
        raise SettingsError(
            "Production needs DATABASE_URL (PostgreSQL); set HUBCAST_ALLOW_SQLITE=1 to insist on SQLite"
        )
    port = int(os.environ.get("PORT", "8000"))
    public_url = os.environ.get("HUBCAST_PUBLIC_URL", f"http://localhost:{port}").rstrip("/")
    secret_key = _secret_key(env, data_dir)
    if env == "production":
        _refuse_unsafe_production(public_url)
    return Settings(
        env=env,
        data_dir=data_dir,
        database_url=database_url,
        redis_url=os.environ.get("REDIS_URL", "").strip() or None,
        secret_key=secret_key,
        port=port,
        public_url=public_url,
        admin_email=os.environ.get("HUBCAST_ADMIN_EMAIL", "").strip().lower() or None,
        admin_password=os.environ.get("HUBCAST_ADMIN_PASSWORD") or None,
        upload_dir=Path(os.environ.get("HUBCAST_UPLOAD_DIR", data_dir / "uploads")).resolve(),
        **_operation_settings(),
        **_wiring_settings(public_url),
    )


_LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}


def _refuse_unsafe_production(public_url: str) -> None:
    """Production serves people over a network: their session cookie and every page must travel over TLS
    (ASVS V9.1), and several processes must share one Redis (the embedded one is a single machine's).
    http stays allowed for a loopback host only (browsers treat http://localhost as a secure context; a
    proxy on the same box, as in tests/topology, terminates TLS in front of it)."""
    from urllib.parse import urlsplit

    for name, url in (
        ("HUBCAST_PUBLIC_URL", public_url),
        ("HUBCAST_API_URL", os.environ.get("HUBCAST_API_URL", "").strip()),
    ):
        if not url:
            continue
        parts = urlsplit(url)
        if parts.scheme != "https" and (parts.hostname or "").lower() not in _LOOPBACK_HOSTS:
            raise SettingsError(
                f"{name} must be an https:// URL when HUBCAST_ENV=production (it is {url!r}): sign-ins and "
                "the session cookie would cross the network in clear text. Put TLS in front (README "
                '"Deploying") and set the https address.'
            )
    if not os.environ.get("REDIS_URL", "").strip():
        raise SettingsError(
            "REDIS_URL is required when HUBCAST_ENV=production (for example redis://redis-host:6379/0): "
            "the embedded Redis is for one development machine, and every web and worker process must share one."
        )


def _operation_settings() -> dict:
    log_format = os.environ.get("HUBCAST_LOG_FORMAT", "text").strip().lower() or "text"
    if log_format not in {"text", "json"}:
        raise SettingsError(f"HUBCAST_LOG_FORMAT must be text or json, not {log_format!r}")
    workers = os.environ.get("HUBCAST_WEB_WORKERS", "1").strip() or "1"
    if not workers.isdigit() or int(workers) < 1:
        raise SettingsError(f"HUBCAST_WEB_WORKERS must be a whole number of at least 1, not {workers!r}")
    token = os.environ.get("HUBCAST_METRICS_TOKEN", "").strip()
    if token and len(token) < 16:
        raise SettingsError("HUBCAST_METRICS_TOKEN must be at least 16 characters")
    return {"metrics_token": token, "log_format": log_format, "web_workers": int(workers)}


def _wiring_settings(public_url: str) -> dict:
    origins = tuple(o.strip().rstrip("/") for o in os.environ.get("HUBCAST_EXTRA_ORIGINS", "").split(",") if o.strip())
    granian = os.environ.get("GRANIAN_WORKERS", "").strip()
    if granian and (not granian.isdigit() or int(granian) < 1):
        raise SettingsError(f"GRANIAN_WORKERS must be a whole number of at least 1, not {granian!r}")
    return {
        "sandbox_url": os.environ.get("HUBCAST_SANDBOX_URL", "").strip() or "http://127.0.0.1:8001",
        "api_url": os.environ.get("HUBCAST_API_URL", "").strip() or public_url,
        "extra_origins": origins,
        "granian_workers": int(granian) if granian else None,
        "send_profile_dir": os.environ.get("HUBCAST_SEND_PROFILE_DIR", "").strip(),
        "upload_retention_days": _retention_days(),
    }


def _retention_days() -> float:
    raw = os.environ.get("HUBCAST_UPLOAD_RETENTION_DAYS", "").strip() or "30"
    try:
        days = float(raw)
    except ValueError:
        days = -1.0
    if not 0 < days <= 36500:
        raise SettingsError(f"HUBCAST_UPLOAD_RETENTION_DAYS must be a number of days above 0 (e.g. 30), not {raw!r}")
    return days


# --- read at the moment of use ------------------------------------------------------------------
# Still read here (every environment variable Hubcast reads is read in this module: a test compares them
# with the README's table), but not cached: their value may change after the settings were first read.

SEND_ENV_PREFIX = "HUBCAST_SEND_"  # HUBCAST_SEND_<FIELD>: app.services.sending.config.SendingConfig
SANDBOX_ENV_PREFIX = "HUBCAST_SANDBOX_"  # HUBCAST_SANDBOX_<OPTION>: the Sandbox's options (its --help)
RESTART_ENV_PREFIX = "HUBCAST_RESTART_"  # HUBCAST_RESTART_<KNOB>: `hubcast run`'s restart policy
OPT_OUT_KEYWORDS_ENV = "HUBCAST_OPT_OUT_KEYWORDS"


def env_with_prefix(prefix: str) -> dict[str, str]:
    """The variables named `prefix` + FIELD, for the config objects that take one variable per field
    (the sending engine, the Sandbox; a worker or a Sandbox started by a test or a benchmark sets them)."""
    return {name: value for name, value in os.environ.items() if name.startswith(prefix)}


def extra_opt_out_keywords() -> list[str]:
    """HUBCAST_OPT_OUT_KEYWORDS: more words that unsubscribe (comma-separated), added to the built-in ones."""
    return [k for k in os.environ.get(OPT_OUT_KEYWORDS_ENV, "").split(",") if k.strip()]


FREQUENCY_CAP_ENV = "HUBCAST_FREQUENCY_CAP_HOURS"
MESSAGING_WINDOW_ENV = "HUBCAST_MESSAGING_LIMIT_WINDOW_S"


def frequency_cap_hours() -> float:
    """HUBCAST_FREQUENCY_CAP_HOURS: at most one marketing message per contact per this many hours, across
    campaigns (0 or unset: off). An installation-wide policy, read when an audience is frozen and shown on
    the review step; a bad value is refused, never guessed."""
    raw = os.environ.get(FREQUENCY_CAP_ENV, "").strip()
    if not raw:
        return 0.0
    try:
        hours = float(raw)
    except ValueError:
        raise SettingsError(f"{FREQUENCY_CAP_ENV} must be a number of hours (0: off), not {raw!r}") from None
    if hours < 0 or hours > 24 * 365:
        raise SettingsError(f"{FREQUENCY_CAP_ENV} must be between 0 (off) and 8760 hours, not {raw!r}")
    return hours


def messaging_limit_window_s() -> float:
    """HUBCAST_MESSAGING_LIMIT_WINDOW_S: the rolling window of Meta's daily messaging limit (86,400 s; tests
    shorten it so that a held campaign's rows are released within seconds)."""
    raw = os.environ.get(MESSAGING_WINDOW_ENV, "").strip()
    if not raw:
        return 86400.0
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{MESSAGING_WINDOW_ENV} must be a number of seconds, not {raw!r}") from None
    if value <= 0:
        raise SettingsError(f"{MESSAGING_WINDOW_ENV} must be more than 0 seconds, not {raw!r}")
    return value


def public_url_is_https() -> bool:
    """Whether HUBCAST_PUBLIC_URL is https, read on its own: the session cookie's name (`__Host-` prefix)
    and `Secure` flag are fixed when the State classes are defined, before the rest of the settings."""
    return os.environ.get("HUBCAST_PUBLIC_URL", "").strip().lower().startswith("https://")


def channel_api_hosts() -> tuple[str, ...]:
    """HUBCAST_CHANNEL_API_HOSTS: more API base URLs (origins, comma-separated; `:*` as the port means any)
    a channel may point at, besides Meta's Graph host and HUBCAST_SANDBOX_URL. Read when a channel is saved or
    tested, so an operator's change needs no restart of the settings cache."""
    return tuple(h.strip().rstrip("/") for h in os.environ.get("HUBCAST_CHANNEL_API_HOSTS", "").split(",") if h.strip())


def current_redis_url() -> str | None:
    """REDIS_URL as it is now: `hubcast run` and the test harness export the embedded Redis's URL, possibly
    after this process first read its settings."""
    return get_settings().redis_url or os.environ.get("REDIS_URL", "").strip() or None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()


def reset_settings_cache() -> None:
    """Tests change the environment; this makes the next get_settings() read it again."""
    get_settings.cache_clear()
