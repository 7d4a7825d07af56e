"""One clock for the whole app: timezone-aware UTC datetimes.

SQLModel's UTCDateTime column type refuses naive values and returns aware UTC on SQLite and
PostgreSQL alike, so every timestamp in Hubcast is aware.
"""

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
