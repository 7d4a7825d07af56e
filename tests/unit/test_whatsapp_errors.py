"""Meta's error objects -> WhatsAppError -> what the sender does (retry, fail the recipient, stop)."""

from __future__ import annotations

import pytest

from app.whatsapp.errors import (
    PERMANENT,
    RETRYABLE,
    STOP_CAMPAIGN,
    WhatsAppApiError,
    WhatsAppError,
    classify,
    parse_error_object,
    parse_error_response,
)


def err(code, http_status=400, **kw):
    return WhatsAppError(code=code, title="t", http_status=http_status, **kw)


@pytest.mark.parametrize(
    "code,http_status,kind",
    [
        # retryable
        (130429, 400, RETRYABLE),
        (131056, 400, RETRYABLE),
        (131000, 500, RETRYABLE),
        (131000, 400, RETRYABLE),
        (4, 400, RETRYABLE),
        (80007, 400, RETRYABLE),
        (131057, 400, RETRYABLE),
        (131016, 503, RETRYABLE),
        (1, 500, RETRYABLE),
        (2, 503, RETRYABLE),
        (999999, 502, RETRYABLE),
        (None, 503, RETRYABLE),
        (None, None, RETRYABLE),
        (999999, 429, RETRYABLE),
        # permanent for this recipient
        (131026, 400, PERMANENT),
        (131047, 400, PERMANENT),
        (131051, 400, PERMANENT),
        (131050, 400, PERMANENT),
        (100, 400, PERMANENT),
        (131008, 400, PERMANENT),
        (131009, 400, PERMANENT),
        (132005, 400, PERMANENT),
        (131049, 400, PERMANENT),
        (132018, 400, PERMANENT),
        # unknown codes (131001/131002 are not Meta codes) default to permanent: never resend blindly
        (131001, 400, PERMANENT),
        (131002, 400, PERMANENT),
        # template-wide (issue 12): pause the campaign, keep the rows
        (132000, 400, STOP_CAMPAIGN),
        (132001, 404, STOP_CAMPAIGN),
        (132007, 400, STOP_CAMPAIGN),
        (132012, 400, STOP_CAMPAIGN),
        (132015, 400, STOP_CAMPAIGN),
        (132016, 400, STOP_CAMPAIGN),
        (123456, 400, PERMANENT),
        (None, 400, PERMANENT),
        # everyone else would fail the same way
        (131048, 400, STOP_CAMPAIGN),
        (368, 400, STOP_CAMPAIGN),
        (190, 401, STOP_CAMPAIGN),
        (131042, 400, STOP_CAMPAIGN),
        (131031, 400, STOP_CAMPAIGN),
        (10, 403, STOP_CAMPAIGN),
        (200, 403, STOP_CAMPAIGN),
        (294, 403, STOP_CAMPAIGN),
        (0, 401, STOP_CAMPAIGN),
        (133010, 400, STOP_CAMPAIGN),
        (None, 401, STOP_CAMPAIGN),
    ],
)
def test_classification_table(code, http_status, kind):
    assert classify(err(code, http_status)).kind is kind


@pytest.mark.parametrize("code,http_status", [(130429, 400), (4, 400), (80007, 400), (None, 429), (130429, 429)])
def test_rate_limits_are_flagged_for_the_shared_cooldown(code, http_status):
    c = classify(err(code, http_status))
    assert c.retryable and c.rate_limited and not c.recipient_only_backoff


def test_pair_rate_limit_backs_off_that_recipient_only():
    c = classify(err(131056))
    assert c.retryable and c.recipient_only_backoff and not c.rate_limited


def test_marketing_opt_out_fails_and_unsubscribes():
    c = classify(err(131050))
    assert c.permanent and c.unsubscribe_contact


@pytest.mark.parametrize("code", [132000, 132001, 132007, 132012, 132015, 132016])
def test_template_wide_problems_pause_and_keep_the_row(code):
    c = classify(err(code))
    assert c.template_issue and c.template_paused and c.stops_campaign


@pytest.mark.parametrize("code", [132005, 132018])
def test_recipient_template_problems_fail_only_that_row(code):
    c = classify(err(code))
    assert c.template_issue and c.permanent and not c.template_paused


@pytest.mark.parametrize(("code", "status"), [(131000, 400), (131016, 503), (1, 500), (None, 502), (999999, 500)])
def test_meta_failing_is_server_trouble(code, status):
    c = (
        classify(err(code, http_status=status))
        if code is not None
        else classify(WhatsAppError(None, "x", http_status=502))
    )
    assert c.retryable and c.server_trouble


def test_throttles_are_not_server_trouble():
    for code in (4, 80007, 130429):
        c = classify(err(code))
        assert c.rate_limited and not c.server_trouble
    assert classify(err(131056)).recipient_only_backoff


def test_wrong_phone_number_id_stops_the_campaign():
    assert classify(err(100, subcode=33)).stops_campaign
    assert classify(err(100, subcode=2494010)).permanent


def test_unknown_code_flagged_transient_is_retried():
    assert classify(err(777, is_transient=True)).retryable
    assert classify(err(777, is_transient=False)).permanent


def test_parse_graph_error_envelope():
    payload = {
        "error": {
            "message": "(#131026) Message Undeliverable.",
            "type": "OAuthException",
            "code": 131026,
            "error_subcode": 2494010,
            "error_data": {"messaging_product": "whatsapp", "details": "Message Undeliverable."},
            "fbtrace_id": "AbCdEf",
            "is_transient": False,
        }
    }
    e = parse_error_response(payload, 400)
    assert (e.code, e.title, e.details, e.http_status) == (
        131026,
        "Message Undeliverable.",
        "Message Undeliverable.",
        400,
    )
    assert (e.type, e.subcode, e.fbtrace_id, e.is_transient) == ("OAuthException", 2494010, "AbCdEf", False)


def test_title_prefers_title_then_user_title_then_message():
    assert (
        parse_error_object({"code": 131049, "title": "Not delivered", "message": "(#131049) x"}).title
        == "Not delivered"
    )
    assert parse_error_object({"code": 100, "error_user_title": "Bad phone", "message": "m"}).title == "Bad phone"
    assert parse_error_object({"code": 100, "message": "(#100) Invalid parameter"}).title == "Invalid parameter"
    assert parse_error_object({"code": 131000}).title == "Something went wrong"
    assert parse_error_object({"code": 100, "error_user_msg": "Use E.164"}).details == "Use E.164"


def test_parse_status_webhook_error():
    e = parse_error_object(
        {
            "code": 131050,
            "title": "User has stopped marketing messages",
            "message": "User has stopped marketing messages",
            "error_data": {"details": "Unable to deliver the message."},
            "href": "https://...",
        }
    )
    assert (e.code, e.title, e.details, e.http_status) == (
        131050,
        "User has stopped marketing messages",
        "Unable to deliver the message.",
        None,
    )


@pytest.mark.parametrize("payload", [None, {}, {"error": "nope"}, ["x"], {"message": "not graph"}])
def test_non_graph_bodies_become_http_errors(payload):
    e = parse_error_response(payload, 502, raw_text="<html>Bad gateway</html>")
    assert e.code is None and e.title == "HTTP 502" and e.http_status == 502
    assert classify(e).retryable


def test_string_code_is_tolerated_and_garbage_ignored():
    e = parse_error_object({"code": "130429", "error_subcode": "x", "error_data": "nope", "message": "Rate limit hit"})
    assert e.code == 130429 and e.subcode is None and e.details == ""


def test_api_error_exposes_error_classification_and_ambiguity():
    e = WhatsAppApiError(err(130429))
    assert e.code == 130429 and e.retryable and e.classification.rate_limited and not e.ambiguous
    assert "130429" in str(e)
