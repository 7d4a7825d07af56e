"""`X-Hub-Signature-256`: Meta signs every webhook body with HMAC-SHA256 keyed by the app secret.

Verify against the raw request bytes, before any JSON parsing, and in constant time.
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-Hub-Signature-256"
_PREFIX = "sha256="


def _key(app_secret: str | bytes) -> bytes:
    return app_secret if isinstance(app_secret, bytes) else app_secret.encode("utf-8")


def sign(body: bytes, app_secret: str | bytes) -> str:
    return _PREFIX + hmac.new(_key(app_secret), body, hashlib.sha256).hexdigest()


def verify(body: bytes, header_value: str | None, app_secret: str | bytes) -> bool:
    """False for a missing or malformed header and for an empty secret (never accept unsigned)."""
    if not header_value or not app_secret or not header_value.startswith(_PREFIX):
        return False
    given = header_value[len(_PREFIX) :].strip().lower()
    return hmac.compare_digest(given.encode("ascii", "replace"), sign(body, app_secret)[len(_PREFIX) :].encode("ascii"))
