"""Issue 13, item 5: a channel's stored access token cannot be sent to a host of the attacker's choosing, and
nobody but an admin reads what a host answered.

The attack: someone with an admin's session (or a rogue admin, who may never read secrets back) edits a working
channel, changes only its API base URL to a server they run and saves; Hubcast's connection test then
calls that server with the stored token in the Authorization header, and its error text, the server's raw
body, is shown on the Channels page to every role. Here the attacker's server is a real HTTP server in this
test, recording every request; the channel's real host is a real Sandbox process (the configured Sandbox URL).
"""

from __future__ import annotations

import http.server
import threading
from contextlib import contextmanager

import pytest

from app.domain import permissions as perm
from app.models import Channel
from app.services.channels import channels as channels_service
from app.services.channels.channels import ChannelError
from app.settings import reset_settings_cache
from tests.support.hardening import record
from tests.support.sandbox import ACCOUNT_PNID, ACCOUNT_SECRET, ACCOUNT_TOKEN, ACCOUNT_WABA, run_account_sandbox

RAW_BODY = "<html><body>ATTACKER-RAW-BODY: internal proxy page, debug id 7f3a</body></html>"
NEW_TOKEN = "EAAG-token-typed-by-the-attacker"


@contextmanager
def attacker_server():
    """An HTTP server on a free port that records every request and answers 502 with an HTML body."""
    seen: list[dict] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self):
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length).decode("latin-1") if length else ""
            seen.append({"path": self.path, "headers": dict(self.headers.items()), "body": body})
            payload = RAW_BODY.encode()
            self.send_response(502)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _answer

        def log_message(self, *_args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture()
def sandbox_host(tmp_path, monkeypatch):
    """A real Sandbox process, configured as the install's Sandbox URL (so it is an allowed host)."""
    with run_account_sandbox(tmp_path / "sandbox") as sandbox:
        monkeypatch.setenv("HUBCAST_SANDBOX_URL", sandbox.url)
        monkeypatch.delenv("HUBCAST_CHANNEL_API_HOSTS", raising=False)
        reset_settings_cache()
        yield sandbox.url
    reset_settings_cache()


def _save_and_test(actor, channel_id, form):
    """What the Channels page's "Save and test" runs (state/channels.py), minus the websocket."""
    from state.channels import _save_and_test as save_and_test

    return save_and_test(actor, channel_id, form)


def test_changing_the_api_host_never_sends_the_stored_token_there(session, make_user, sandbox_host, monkeypatch):
    admin, advanced, basic = make_user(perm.ADMIN), make_user(perm.ADVANCED), make_user(perm.BASIC)
    form = {
        "name": "Shop",
        "phone_number_id": ACCOUNT_PNID,
        "business_account_id": ACCOUNT_WABA,
        "access_token": ACCOUNT_TOKEN,
        "app_secret": ACCOUNT_SECRET,
        "api_base_url": sandbox_host,
    }
    first = _save_and_test(admin, None, form)
    assert first["test"].ok, first["test"]
    channel_id = first["id"]

    outcomes: dict[str, str] = {}
    with attacker_server() as (evil_url, seen):
        edit = channels_service.channel_for_edit(session=session, actor=admin, channel_id=channel_id)
        moved = {**edit, "api_base_url": evil_url, "access_token": "", "app_secret": "", "verify_token": ""}

        # 1. Only the host changes, the token field left empty ("keep the stored one").
        try:
            _save_and_test(admin, channel_id, moved)
            outcomes["host changed, token kept"] = "saved"
        except ChannelError as exc:
            outcomes["host changed, token kept"] = f"refused: {exc}"

        # 2. An operator allowed that host: the stored token still does not follow the new host.
        monkeypatch.setenv("HUBCAST_CHANNEL_API_HOSTS", evil_url)
        try:
            _save_and_test(admin, channel_id, moved)
            outcomes["allowed host, token kept"] = "saved"
        except ChannelError as exc:
            outcomes["allowed host, token kept"] = f"refused: {exc}"

        # 3. With a token typed again (one the typist knows anyway), the allowed host is used and answers HTML.
        typed = _save_and_test(admin, channel_id, {**moved, "access_token": NEW_TOKEN})
        outcomes["allowed host, token typed again"] = "saved" if typed["test"] is not None else "not tested"

        requests = list(seen)
    stored_token_sent = [r for r in requests if ACCOUNT_TOKEN in repr(r)]
    session.expire_all()
    views = {
        role.role: channels_service.channels_overview(session=session, actor=role) for role in (admin, advanced, basic)
    }
    leaked_to = [role for role, rows in views.items() if role != perm.ADMIN and "ATTACKER-RAW-BODY" in repr(rows)]
    admin_sees = "ATTACKER-RAW-BODY" in repr(views[perm.ADMIN])
    basic_error = next(r["last_error"] for r in views[perm.BASIC] if r["id"] == channel_id)
    channel = session.get(Channel, channel_id)
    ok = (
        outcomes["host changed, token kept"].startswith("refused")
        and outcomes["allowed host, token kept"].startswith("refused")
        and not stored_token_sent
        and not leaked_to
    )
    record(
        "handlers",
        "channel API host changed to an attacker's server (stored token sent? raw body shown?)",
        ok=ok,
        checked=4,
        refused_correctly=sum(v.startswith("refused") for v in outcomes.values()) + int(not leaked_to),
        allowed_correctly=int(outcomes["allowed host, token typed again"] == "saved"),
        requests_at_attacker=len(requests),
        stored_token_sent=len(stored_token_sent),
        basic_user_reads=basic_error,
    )
    assert outcomes["host changed, token kept"].startswith("refused"), outcomes
    assert "Graph" in outcomes["host changed, token kept"] or "allowed" in outcomes["host changed, token kept"]
    assert outcomes["allowed host, token kept"].startswith("refused"), outcomes
    assert "access token again" in outcomes["allowed host, token kept"], outcomes
    assert not stored_token_sent, f"the stored token reached the attacker's server: {stored_token_sent[0]['path']}"
    # The re-typed token did go there (the operator allowed the host), and its answer was stored:
    assert any(NEW_TOKEN in repr(r) for r in requests) and channel.api_base_url == evil_url
    assert not leaked_to, f"{leaked_to} read the raw response body"
    assert basic_error and "502" in basic_error, basic_error
    assert admin_sees, "the admin should still get the full answer to diagnose"
