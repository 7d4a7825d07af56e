"""The cookies that tie a browser to its session (issue 13 item 4, ASVS 3.4).

The session secret lives in a cookie the browser sends with the websocket handshake; a Reflex tab token
alone (it sits in the page's sessionStorage, so any script or copied URL can leak it) must not be enough
to act as the tab's user. So every event compares the state's secret with the cookie of the connection
that carried it (`bound_secret`).

Names and flags: when the public URL is https the cookies are `Secure` and carry the `__Host-` prefix
(the browser then refuses one set by a sibling subdomain or over plain http, and it can have no Domain);
over plain http (a laptop, a test) the prefix is impossible (it requires `Secure`), so the plain name is
used. SameSite=Strict everywhere.
"""

from __future__ import annotations

import hmac

from app.settings import public_url_is_https

SECURE = public_url_is_https()
_PREFIX = "__Host-" if SECURE else ""
SESSION_COOKIE = f"{_PREFIX}hubcast_session"
DEVICE_COOKIE = f"{_PREFIX}hubcast_device"
SAME_SITE = "strict"
# What rx.remove_cookie must repeat: a browser deletes a __Host- cookie only when told Secure and Path=/.
REMOVE_OPTIONS = {"path": "/", "secure": SECURE, "sameSite": SAME_SITE}  # universal-cookie's spelling


def from_header(cookie_header: str, name: str) -> str:
    """The value of cookie `name` in a Cookie request header ("" when absent). The first one wins, as in
    browsers' own ordering (the most specific path first); malformed pairs are skipped."""
    for pair in (cookie_header or "").split(";"):
        key, sep, value = pair.strip().partition("=")
        if sep and key.strip() == name:
            return value.strip().strip('"')
    return ""


def bound_secret(*, state_secret: str, handshake_cookie_header: str, signed_in_here: bool = False) -> str:
    """The session secret to trust for one event: the state's, only when the connection's handshake
    carried the same cookie (or this very connection is the one that signed in, before any reconnect:
    the browser wrote the cookie after its socket opened). Otherwise "" (the caller is nobody)."""
    if not state_secret:
        return ""
    if signed_in_here:
        return state_secret
    sent = from_header(handshake_cookie_header, SESSION_COOKIE)
    return state_secret if sent and hmac.compare_digest(sent.encode(), state_secret.encode()) else ""
