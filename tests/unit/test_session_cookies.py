"""Issue 13 item 4: the session cookie's name and flags, and reading it from a handshake's Cookie header."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from app.services.accounts import cookies
from app.settings import PROJECT_ROOT

SHOW = """
import json
from state.base import AppState
from state.login import LoginState
out = {}
for cls, var in ((AppState, "session_secret"), (LoginState, "device_token")):
    c = cls.get_fields()[var].default
    out[var] = {"name": c.name, "secure": c.secure, "same_site": c.same_site, "path": c.path, "domain": c.domain}
print(json.dumps(out))
"""


def _cookies_with(public_url: str) -> dict:
    env = {**os.environ, "HUBCAST_PUBLIC_URL": public_url}
    proc = subprocess.run(
        [sys.executable, "-c", SHOW], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_https_public_url_gives_secure_host_prefixed_strict_cookies():
    found = _cookies_with("https://hubcast.example.com")
    assert found["session_secret"] == {
        "name": "__Host-hubcast_session",
        "secure": True,
        "same_site": "strict",
        "path": "/",
        "domain": None,  # __Host- cookies may have no Domain
    }
    assert found["device_token"]["name"] == "__Host-hubcast_device" and found["device_token"]["secure"] is True


def test_plain_http_keeps_the_plain_names_without_secure():
    # A __Host- cookie needs Secure, which a browser refuses to set over plain http (a laptop, a test).
    found = _cookies_with("http://localhost:8000")
    assert found["session_secret"]["name"] == "hubcast_session" and not found["session_secret"]["secure"]
    assert found["session_secret"]["same_site"] == "strict"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"{cookies.SESSION_COOKIE}=abc", "abc"),
        (f"other=1; {cookies.SESSION_COOKIE}=abc; x=y", "abc"),
        (f"x{cookies.SESSION_COOKIE}=evil; {cookies.SESSION_COOKIE}=abc", "abc"),  # no suffix match
        (f"{cookies.SESSION_COOKIE}", ""),
        ("", ""),
    ],
)
def test_the_session_cookie_is_read_from_a_cookie_header(header, expected):
    assert cookies.from_header(header, cookies.SESSION_COOKIE) == expected


def test_bound_secret_needs_the_same_cookie_or_the_signing_in_socket():
    name = cookies.SESSION_COOKIE
    assert cookies.bound_secret(state_secret="s3", handshake_cookie_header=f"{name}=s3") == "s3"
    assert cookies.bound_secret(state_secret="s3", handshake_cookie_header="") == ""
    assert cookies.bound_secret(state_secret="s3", handshake_cookie_header=f"{name}=other") == ""
    assert cookies.bound_secret(state_secret="s3", handshake_cookie_header="", signed_in_here=True) == "s3"
    assert cookies.bound_secret(state_secret="", handshake_cookie_header=f"{name}=", signed_in_here=True) == ""
