"""X-Hub-Signature-256: HMAC-SHA256 of the raw body with the app secret."""

from __future__ import annotations

import hashlib
import hmac

from app.whatsapp.signature import sign, verify

BODY = b'{"object":"whatsapp_business_account","entry":[]}'


def test_sign_matches_an_independent_hmac():
    expected = "sha256=" + hmac.new(b"s3cret", BODY, hashlib.sha256).hexdigest()
    assert sign(BODY, "s3cret") == expected == sign(BODY, b"s3cret")


def test_verify_accepts_the_right_signature_in_any_hex_case():
    header = sign(BODY, "s3cret")
    assert verify(BODY, header, "s3cret")
    assert verify(BODY, "sha256=" + header[7:].upper(), "s3cret")


def test_verify_refuses_tampering_wrong_secret_and_junk():
    header = sign(BODY, "s3cret")
    assert not verify(BODY + b" ", header, "s3cret")
    assert not verify(BODY, header, "other")
    assert not verify(BODY, header[7:], "s3cret")  # no "sha256=" prefix
    assert not verify(BODY, "sha1=" + header[7:], "s3cret")
    assert not verify(BODY, None, "s3cret") and not verify(BODY, "", "s3cret")
    assert not verify(BODY, "sha256=zz\u00e9", "s3cret")


def test_an_empty_secret_never_verifies():
    assert not verify(BODY, sign(BODY, ""), "")
