r"""Is this an email address? A linear-time check (issue 13 item 10).

The former pattern `^[^@\s]+@[^@\s]+\.[^@\s]+$` backtracks quadratically on a long run of dots followed by
an invalid character (20,000 characters took seconds). This checks the length first (RFC 5321: at most 254
characters, a local part of at most 64) and then splits and scans once: exactly one "@", no whitespace, a
local part, and a domain with a dot that is neither its first nor its last character. Deliberately
permissive beyond that: delivery, not syntax, is what proves an address.
"""

from __future__ import annotations

MAX_LENGTH = 254
MAX_LOCAL_LENGTH = 64


def is_email(value: str) -> bool:
    if not isinstance(value, str) or not 3 <= len(value) <= MAX_LENGTH:
        return False
    if any(ch.isspace() for ch in value) or value.count("@") != 1:
        return False
    local, domain = value.split("@")
    if not local or len(local) > MAX_LOCAL_LENGTH:
        return False
    dot = domain.find(".")
    return dot > 0 and not domain.endswith(".")
