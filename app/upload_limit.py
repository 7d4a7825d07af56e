"""Refuse oversized uploads at the HTTP layer, before anything is buffered.

Reflex's upload endpoint (`/_upload`) accepts any size: `rx.upload(max_size=...)` is enforced only in
the browser, and Starlette spools the whole multipart body to a temporary file before a handler
runs. This ASGI middleware answers 413 as soon as the declared Content-Length, or the bytes
actually received, pass the limit (CSV limit plus room for the multipart envelope).
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.settings import get_settings

MULTIPART_ALLOWANCE = 64 * 1024
UPLOAD_PATH_PREFIX = "/_upload"


class _TooLarge(HTTPException):
    # An HTTPException, so that an app with Starlette's exception middleware (Reflex's) answers
    # 413 itself instead of turning the aborted read into a 500.
    def __init__(self, limit: int):
        super().__init__(413, _message(limit))


class UploadSizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int | None = None):
        self.app = app
        self.max_bytes = max_bytes

    def _limit(self) -> int:
        return (self.max_bytes or get_settings().max_csv_bytes) + MULTIPART_ALLOWANCE

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(UPLOAD_PATH_PREFIX):
            await self.app(scope, receive, send)
            return
        limit = self._limit()
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _refuse(send, limit)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _refuse(send, limit)


def _message(limit: int) -> str:
    return f"File too large: the limit is {(limit - MULTIPART_ALLOWANCE) / (1024 * 1024):.0f} MB."


async def _refuse(send: Send, limit: int) -> None:
    body = _message(limit).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
