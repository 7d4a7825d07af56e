"""Issue 6 items 13 and 14: oversized uploads, reaching uploaded files by URL, and a foreign websocket Origin.

The ASGI app under test is assembled from the real pieces the way Reflex assembles it at startup
(`App.__call__`, minus the frontend compile): the app's own HTTP API (`build_http_api()`, whose
UploadSizeLimit middleware guards everything mounted inside it) with, mounted inside, Reflex's real
upload endpoint (`upload(app)`, POST /_upload, which hands the files to the State's upload handler
through the event processor), Reflex's static server of uploaded files (GET /_upload/...) and Reflex's
own backend (`app._api`, with the Socket.IO server on /_event). Requests go over httpx's ASGI transport;
the websocket handshake is driven as raw ASGI messages.
The running server (`reflex run`) is covered the same way in tests/e2e/test_server_limits.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from reflex_base.config import get_config
from reflex_components_core.core._upload import UploadedFilesHeadersMiddleware, upload
from reflex_components_core.core.upload import get_upload_dir
from starlette.applications import Starlette
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from app.http_api import build_http_api
from app.settings import PROJECT_ROOT, get_settings
from app.upload_limit import MULTIPART_ALLOWANCE
from state.contact_import import ContactImportState
from tests.support.hardening import record
from tests.support.reflex_client import RX_APP, cookie_for, event_name, settle

MB = 1024 * 1024
LIMIT = 20 * MB
FOREIGN = "https://evil.example"
PART_TYPE = "multipart/form-data; boundary=hubcast-boundary"
PART_HEAD = (
    b'--hubcast-boundary\r\nContent-Disposition: form-data; name="files"; filename="big.csv"\r\n'
    b"Content-Type: text/csv\r\n\r\nphone\n"
)
PART_TAIL = b"\r\n--hubcast-boundary--\r\n"


@pytest.fixture()
def reflex_uploads_dir(tmp_path, monkeypatch) -> Path:
    """Reflex's own public upload dir (served at /_upload/...), kept out of the checkout."""
    folder = tmp_path / "reflex_uploaded_files"
    monkeypatch.setenv("REFLEX_UPLOADED_FILES_DIR", str(folder))
    return folder


def assembled_app() -> Starlette:
    inner = Starlette(
        routes=[
            Route("/_upload", upload(RX_APP), methods=["POST"]),
            Mount("/_upload", UploadedFilesHeadersMiddleware(StaticFiles(directory=get_upload_dir())), name="uploaded"),
            Mount("", RX_APP._api),
        ]
    )
    outer = build_http_api()
    outer.mount("", inner)
    return outer


def _private_files() -> list[Path]:
    folder = get_settings().upload_dir
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def _multipart(name: str, data: bytes) -> tuple[bytes, str]:
    request = httpx.Request("POST", "http://x/", files={"files": (name, data, "text/csv")})
    return request.read(), request.headers["content-type"]


def test_uploads_over_20_mb_are_refused_before_being_stored(world, redis_client, reflex_backend, reflex_uploads_dir):
    cookie, _ = cookie_for(world, "advanced", redis_client)
    handler = event_name(ContactImportState, "handle_upload")
    over, over_type = _multipart("big.csv", b"phone\n" + b"9" * (LIMIT + 1 - 6))  # a 20 MB + 1 byte file
    assert len(over) < LIMIT + MULTIPART_ALLOWANCE  # small enough to pass the HTTP layer: the copy must stop it
    fine, fine_type = _multipart("ok.csv", b"phone,name\n+61412345678,Ann\n")

    async def scenario(new_client):
        client = new_client()
        await client.connect(cookie, path="/contacts")
        await client.send(event_name(ContactImportState, "open_import"), {}, path="/contacts")
        headers = {"reflex-client-token": client.token, "reflex-event-handler": handler}
        results = {}
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=assembled_app()), base_url="http://hubcast.test", timeout=120
        ) as http:

            async def stream():  # a well-formed multipart body, 25 MB of file, sent without a length
                yield PART_HEAD
                for _ in range(25):
                    yield b"9" * MB
                yield PART_TAIL

            attempts = {
                "declared 21 MB": dict(
                    content=PART_HEAD + b"9" * (21 * MB) + PART_TAIL, headers={**headers, "content-type": PART_TYPE}
                ),
                "streamed 25 MB, no length": dict(content=stream(), headers={**headers, "content-type": PART_TYPE}),
                "20 MB + 1 byte file": dict(content=over, headers={**headers, "content-type": over_type}),
                "a small file": dict(content=fine, headers={**headers, "content-type": fine_type}),
            }
            for name, kwargs in attempts.items():
                response = await http.post("/_upload", **kwargs)
                await settle()
                state = await client.substate(ContactImportState)
                results[name] = (response.status_code, response.text[:200], state.error, state.step, _private_files())
        await client.close()
        return results

    results = reflex_backend(scenario)
    figures = {}
    for name in ("declared 21 MB", "streamed 25 MB, no length"):
        status, text, error, step, files = results[name]
        figures[name] = status
        assert (status, step, files) == (413, "upload", []), (name, results[name])
        assert "limit is 20 MB" in text
    status, _, error, step, files = results["20 MB + 1 byte file"]
    assert (status, step, files) == (200, "upload", [])  # through HTTP, refused while copying, nothing kept
    assert error == '"big.csv" is larger than 20 MB, the limit for a CSV file; split it into smaller files.'
    status, _, error, step, files = results["a small file"]
    assert (status, error, step) == (200, "", "summary")  # the same path accepts a real file: the refusals can fail
    assert len(files) == 1 and files[0].suffix == ".csv" and len(files[0].stem) == 32
    record(
        "handlers",
        "uploads over 20 MB (declared, streamed, inside a small multipart)",
        ok=True,
        checked=4,
        refused_correctly=3,
        allowed_correctly=1,
        statuses={k: v[0] for k, v in results.items()},
    )


def test_uploaded_files_are_not_reachable_by_any_url(world, redis_client, reflex_backend, reflex_uploads_dir):
    cookie, _ = cookie_for(world, "advanced", redis_client)
    body, content_type = _multipart("contacts.csv", b"phone,name\n+61412345678,Secret Ann\n")

    async def scenario(new_client):
        client = new_client()
        await client.connect(cookie, path="/contacts")
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=assembled_app()), base_url="http://hubcast.test"
        ) as http:
            stored = await http.post(
                "/_upload",
                content=body,
                headers={
                    "content-type": content_type,
                    "reflex-client-token": client.token,
                    "reflex-event-handler": event_name(ContactImportState, "handle_upload"),
                },
            )
            await settle()
            [path] = _private_files()
            rel = path.relative_to(get_settings().upload_dir)
            guesses = [
                f"/_upload/{path.name}",
                f"/_upload/{rel}",
                "/_upload/contacts.csv",
                f"/{rel}",
                f"/{path.name}",
                f"/_upload/../{rel}",
                f"/_upload/%2e%2e/{rel}",
                f"/_upload/..%2f{rel}",
                f"/_upload/{'../' * 8}{str(path).lstrip('/')}",
                f"/data/uploads/{rel}",
                f"/uploads/{rel}",
                f"/assets/{path.name}",
                f"/_event/{path.name}",
                "/exports/campaigns/1.csv",
            ]
            answers = {g: await http.get(g) for g in guesses}
        await client.close()
        return stored.status_code, path, answers

    status, path, answers = reflex_backend(scenario)
    assert status == 200
    leaks = {g: r.status_code for g, r in answers.items() if r.status_code == 200 or b"Secret Ann" in r.content}
    private = path.resolve()
    outside = all(
        not private.is_relative_to(p.resolve())
        for p in (reflex_uploads_dir, PROJECT_ROOT / "assets", PROJECT_ROOT / ".web", PROJECT_ROOT / "build")
    )
    record(
        "handlers",
        "uploaded file fetched by URL (14 guesses, path traversal included)",
        ok=not leaks and outside,
        checked=len(answers),
        refused_correctly=len(answers) - len(leaks),
        allowed_correctly=0,
    )
    assert leaks == {}
    assert outside  # the private dir is not inside anything a web server serves
    assert oct(path.stat().st_mode & 0o777) == "0o600"


async def _websocket_handshake(app, origin: str) -> list[dict]:
    """Open /_event as a websocket with this Origin; return what the server sent before we hang up."""
    sent: list[dict] = []
    inbox: asyncio.Queue = asyncio.Queue()
    await inbox.put({"type": "websocket.connect"})
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "http_version": "1.1",
        "path": "/_event/",
        "raw_path": b"/_event/",
        "root_path": "",
        "query_string": b"EIO=4&transport=websocket",
        "client": ("203.0.113.9", 5000),
        "server": ("hubcast.test", 80),
        "subprotocols": [],
        "headers": [
            (b"host", b"hubcast.test"),
            (b"origin", origin.encode()),
            (b"upgrade", b"websocket"),
            (b"connection", b"Upgrade"),
            (b"sec-websocket-version", b"13"),
            (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
        ],
    }

    async def receive():
        return await inbox.get()

    async def send(message):
        sent.append(message)
        if message["type"] in ("websocket.accept", "websocket.close", "websocket.http.response.start"):
            await inbox.put({"type": "websocket.disconnect", "code": 1000})

    try:
        await asyncio.wait_for(app(scope, receive, send), timeout=10)
    except TimeoutError:
        pass
    return sent


def test_a_foreign_origin_cannot_open_the_event_socket(world, reflex_backend, reflex_uploads_dir):
    own = sorted(get_config().cors_allowed_origins)[0]
    assert "*" not in get_config().cors_allowed_origins

    async def scenario(_new_client):
        app = assembled_app()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hubcast.test") as http:
            url = "/_event/?EIO=4&transport=polling"
            polling = {origin: await http.get(url, headers={"Origin": origin}) for origin in (FOREIGN, own)}
        sockets = {origin: await _websocket_handshake(app, origin) for origin in (FOREIGN, "null", own)}
        return polling, sockets

    polling, sockets = reflex_backend(scenario)
    foreign = polling[FOREIGN]
    kinds = {origin: [m["type"] for m in messages] for origin, messages in sockets.items()}
    refused = (
        foreign.status_code == 400
        and "not an accepted origin" in foreign.text
        and not foreign.headers.get("access-control-allow-origin")
        and all("websocket.accept" not in kinds[o] for o in (FOREIGN, "null"))
    )
    # (Reflex allows the websocket transport only, so a polling request from the app's own origin is refused
    # too, but for its transport, after the origin check passed.)
    allowed = "not an accepted origin" not in polling[own].text and "websocket.accept" in kinds[own]
    record(
        "handlers",
        "event socket from a foreign Origin (polling and websocket)",
        ok=refused and allowed,
        checked=5,
        refused_correctly=3 if refused else 0,
        allowed_correctly=2 if allowed else 0,
        websocket=kinds,
    )
    assert foreign.status_code == 400 and "not an accepted origin" in foreign.text
    assert not foreign.headers.get("access-control-allow-origin")
    assert all("websocket.accept" not in kinds[o] for o in (FOREIGN, "null")), kinds
    # The app's own origin gets in (so the refusals above can fail).
    assert "not an accepted origin" not in polling[own].text
    assert "websocket.accept" in kinds[own], kinds
