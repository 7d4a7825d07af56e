"""Log output for `hubcast web` and `hubcast worker`: text for people, JSON lines for log pipelines.

`HUBCAST_LOG_FORMAT=json` makes every record one JSON object on its own line (stderr), with the fields
log shippers expect: `ts` (UTC, ISO 8601 with milliseconds), `level`, `logger`, `message`, `process`
(`web` / `worker`), `pid`, and `exc_info` (the formatted traceback) when there is one; values passed
with `extra={...}` are kept as fields. Reflex's and Granian's own records go through Reflex's JSON
handler (`REFLEX_LOG_JSON`, set by `hubcast web`), so a web process prints nothing but JSON lines.

Only the standard library: workers must not import Reflex, and this runs before anything else.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime

from app.settings import Settings

# Attributes every LogRecord has; anything else on a record came from `extra=` and is kept.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def __init__(self, role: str = "") -> None:
        super().__init__()
        self.role = role

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "process": self.role,
            "pid": record.process,
        }
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry and not key.startswith("_"):
                entry[key] = value if isinstance(value, str | int | float | bool | type(None)) else repr(value)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(settings: Settings, role: str = "web", level: int = logging.INFO) -> None:
    """JSON: install one stderr JSON handler on the root logger (idempotent). Text: leave the defaults
    (RQ's and Reflex's own console output, as `hubcast run` shows them)."""
    if settings.log_format != "json":
        return
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_hubcast", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._hubcast = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter(role))
    # Reflex and Granian use their own JSON handler (in this process and the server processes it forks);
    # RQ adds its console handler only when no ancestor logger has one, so it uses this one.
    os.environ["REFLEX_LOG_JSON"] = "true"
    root.addHandler(handler)
    root.setLevel(level)
