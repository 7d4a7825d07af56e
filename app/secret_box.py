"""Encryption at rest for channel secrets (access tokens, app secrets, verify tokens).

`EncryptedString` is a column type: Python code reads and writes plaintext, the database only ever
holds Fernet tokens (AES-128-CBC + HMAC-SHA256) under a key derived from HUBCAST_SECRET_KEY with HKDF.
A database dump or backup alone therefore does not hand out the WhatsApp account. Rotating the
secret key makes stored secrets unreadable (they read back as empty and must be entered again);
that is deliberate: there is no way to recover them without the old key.
"""

from __future__ import annotations

import base64
import logging
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import String, Text
from sqlalchemy.types import TypeDecorator

from app.settings import get_settings

PREFIX = "enc1:"
log = logging.getLogger(__name__)


@lru_cache(maxsize=4)
def _fernet_for(secret_key: str) -> Fernet:
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"hubcast", info=b"channel secrets v1").derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(raw))


def _fernet() -> Fernet:
    return _fernet_for(get_settings().secret_key)


def seal(plaintext: str) -> str:
    if not plaintext:
        return ""
    return PREFIX + _fernet().encrypt(plaintext.encode()).decode()


def unseal(stored: str) -> str:
    if not stored:
        return ""
    if not stored.startswith(PREFIX):  # written before encryption existed: readable, re-sealed on next save
        return stored
    try:
        return _fernet().decrypt(stored[len(PREFIX) :].encode()).decode()
    except InvalidToken:
        log.error("a stored channel secret cannot be decrypted (was HUBCAST_SECRET_KEY changed?)")
        return ""


class EncryptedString(TypeDecorator):
    """A VARCHAR column whose value is stored sealed. `length` bounds the *stored* token."""

    impl = String
    cache_ok = True

    def __init__(self, length: int | None = None):
        super().__init__(length)
        self._max = length

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        sealed = seal(value)
        if self._max and len(sealed) > self._max:
            raise ValueError(f"secret too long to store ({len(value)} characters)")
        return sealed

    def process_result_value(self, value, dialect):
        return None if value is None else unseal(value)


class EncryptedText(EncryptedString):
    """A TEXT column whose value is stored sealed (no length limit: access tokens can be long)."""

    impl = Text
    cache_ok = True

    def __init__(self):
        TypeDecorator.__init__(self)
        self._max = None
