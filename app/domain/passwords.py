"""Password hashing with Argon2id (argon2-cffi's maintained defaults) and password rules.

The rules follow ASVS 2.1 (NIST 800-63B): at least 12 characters, at most 256, no composition rules,
and refused when common: the 30,000 most common passwords of breached sets that zxcvbn ships
(`zxcvbn.frequency_lists`, from real leaks), or a password zxcvbn's estimator guesses in under 10^8
tries (a common word with digits appended, a keyboard walk, a repeated character, a date)."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from zxcvbn import zxcvbn
from zxcvbn.frequency_lists import FREQUENCY_LISTS

_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile
# Verifying against this when the account does not exist keeps response times alike,
# so timing does not reveal which emails have accounts.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))

MIN_LENGTH = 12
MAX_LENGTH = 256
# zxcvbn's scores: 0-2 mean fewer than 10^8 guesses (online throttling slows, offline cracking doesn't).
MIN_SCORE = 3
# The estimator's cost grows with the length; past this many characters a password is long enough.
_ESTIMATE_CHARS = 64
COMMON_PASSWORDS: frozenset[str] = frozenset(FREQUENCY_LISTS["passwords"])


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def check_password_rules(password: str, *, email: str = "") -> None:
    """ValueError with the reason shown to the user when `password` may not be used."""
    if len(password) < MIN_LENGTH:
        raise ValueError(f"Password must be at least {MIN_LENGTH} characters.")
    if len(password) > MAX_LENGTH:
        raise ValueError(f"Password must be at most {MAX_LENGTH} characters.")
    if password.lower() in COMMON_PASSWORDS:
        raise ValueError("This password is one of the most common passwords found in breaches; choose another.")
    inputs = [part for part in (email or "").replace("@", " ").replace(".", " ").split() if part] + ["hubcast"]
    if zxcvbn(password[:_ESTIMATE_CHARS], user_inputs=inputs)["score"] < MIN_SCORE:
        raise ValueError(
            "This password is too easy to guess (a common word or name with a few changes, a keyboard "
            "pattern, a date or repeated characters); a few unrelated words make a strong one."
        )


def generate_password() -> str:
    return secrets.token_urlsafe(15)
