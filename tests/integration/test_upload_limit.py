"""Uploads over the limit are refused by the server before they are stored (the browser's check is a courtesy)."""

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from app.upload_limit import MULTIPART_ALLOWANCE, UploadSizeLimit

LIMIT = 1024 * 1024


@pytest.fixture()
def seen():
    return []


@pytest.fixture()
def client(seen):
    async def upload(request: Request):
        body = await request.body()
        seen.append(len(body))
        return PlainTextResponse("stored")

    app = UploadSizeLimit(
        Starlette(routes=[Route("/_upload", upload, methods=["POST"]), Route("/other", upload, methods=["POST"])]),
        max_bytes=LIMIT,
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def _post(client, path, content):
    async with client:
        return await client.post(path, content=content)


def test_a_declared_oversized_upload_is_refused_before_reading(client, seen):
    import asyncio

    response = asyncio.run(_post(client, "/_upload", b"x" * (LIMIT + MULTIPART_ALLOWANCE + 1)))
    assert response.status_code == 413 and "limit is 1 MB" in response.text
    assert seen == []  # the endpoint never ran


def test_a_streamed_upload_without_length_is_cut_off(client, seen):
    import asyncio

    async def chunks():
        for _ in range(40):
            yield b"y" * 64 * 1024  # 2.5 MB in all, no Content-Length

    response = asyncio.run(_post(client, "/_upload", chunks()))
    assert response.status_code == 413
    assert seen == []


def test_uploads_within_the_limit_and_other_paths_pass(client, seen):
    import asyncio

    assert asyncio.run(_post(client, "/_upload", b"z" * LIMIT)).text == "stored"
    assert seen == [LIMIT]
