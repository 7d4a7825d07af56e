"""HTTP-level protections of the running app (the real Reflex server, not a test double)."""

import httpx
import pytest

pytestmark = pytest.mark.e2e


def test_upload_over_20_mb_is_refused_by_the_server(hubcast):
    # The browser's max_size is a courtesy; a script can post anything to Reflex's upload endpoint.
    body = b"phone\n" + b"+33612345678\n" * (21 * 1024 * 1024 // 13)
    response = httpx.post(
        f"{hubcast.base_url}/_upload",
        content=body,
        timeout=60,
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    assert response.status_code == 413
    assert "limit is 20 MB" in response.text


def test_a_foreign_origin_cannot_open_the_event_socket(hubcast):
    # Reflex defaults to "*"; Hubcast allows only its own origin (rxconfig.py).
    url = f"{hubcast.base_url}/_event/?EIO=4&transport=polling"
    foreign = httpx.get(url, headers={"Origin": "https://evil.example"}, timeout=10)
    assert foreign.status_code == 400
    assert "not an accepted origin" in foreign.text
    assert not foreign.headers.get("access-control-allow-origin")
    own = httpx.get(url, headers={"Origin": hubcast.base_url}, timeout=10)
    assert "not an accepted origin" not in own.text
