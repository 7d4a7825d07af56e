"""What the sender does with each kind of failure (pure: no database, no network)."""

import random
from datetime import timedelta

import pytest

from app.services.sending.claims import Claimed
from app.services.sending.config import SendingConfig
from app.services.sending.lifecycle import SendingError, to_utc
from app.services.sending.outcomes import backoff_delay, classify_error, error_ratio_reason, stop_reason
from app.timeutil import utcnow
from app.whatsapp.errors import WhatsAppApiError, WhatsAppError, classify

CONFIG = SendingConfig(max_attempts=3, backoff_base_s=2, backoff_cap_s=60)
NOW = utcnow()


def error(code=None, http_status=400, title="x", ambiguous=False, retry_after=None):
    e = WhatsAppError(code=code, title=title, http_status=http_status)
    return WhatsAppApiError(e, classify(e), ambiguous=ambiguous, retry_after=retry_after)


def row(attempts=1):
    return Claimed(id=1, address="+33612345678", contact_id=1, variables={}, attempts=attempts)


def test_permanent_fails_with_meta_code_and_title():
    o = classify_error(row(), error(131026, title="Message undeliverable"), CONFIG, NOW)
    assert (o.kind, o.code, o.title) == ("failed", 131026, "Message undeliverable")


def test_opted_out_also_unsubscribes():
    o = classify_error(row(), error(131050, title="User has stopped marketing messages"), CONFIG, NOW)
    assert o.kind == "failed" and o.unsubscribe


def test_retryable_backs_off_then_fails_with_the_last_reason():
    o = classify_error(row(1), error(131000, http_status=500, title="Something went wrong"), CONFIG, NOW)
    assert o.kind == "retry" and o.next_attempt_at > NOW
    last = classify_error(row(3), error(131000, http_status=500, title="Something went wrong"), CONFIG, NOW)
    assert last.kind == "failed" and last.code == 131000 and "after 3 attempts" in last.title


def test_rate_limited_goes_back_without_using_an_attempt():
    o = classify_error(row(1), error(130429, title="Rate limit hit", retry_after=4), CONFIG, NOW)
    assert o.kind == "requeue" and o.next_attempt_at == NOW + timedelta(seconds=4)


def test_campaign_stopping_errors_leave_the_row_to_be_sent_on_resume():
    o = classify_error(row(), error(190, http_status=401, title="Access token has expired"), CONFIG, NOW)
    assert o.kind == "requeue"


def test_server_trouble_on_the_last_attempt_waits_during_an_outage():
    trouble = error(131000, http_status=500, title="Something went wrong")
    assert classify_error(row(3), trouble, CONFIG, NOW, outage_s=0.0).kind == "failed"  # this row alone fails
    waits = classify_error(row(3), trouble, CONFIG, NOW, outage_s=30.0)
    assert waits.kind == "requeue" and waits.next_attempt_at > NOW  # Meta's incident: the attempt is given back


def test_server_trouble_past_the_outage_bound_requeues_for_the_pause():
    config = SendingConfig(max_attempts=3, outage_pause_s=60)
    o = classify_error(row(1), error(131016, http_status=503, title="Service unavailable"), config, NOW, 61.0)
    assert o.kind == "requeue"


def test_template_wide_errors_keep_the_row_and_pause():
    exc = error(132015, title="Template is paused")
    assert classify_error(row(), exc, CONFIG, NOW).kind == "requeue"
    assert "#132015" in stop_reason(exc) and "resume" in stop_reason(exc)


def test_ambiguous_is_unknown_never_retried():
    o = classify_error(row(), error(None, None, title="Timeout", ambiguous=True), CONFIG, NOW)
    assert o.kind == "unknown" and "not resent" in o.title


def test_backoff_grows_and_is_capped():
    rng = random.Random(1)
    delays = [backoff_delay(n, CONFIG, rng) for n in range(1, 10)]
    assert 1 <= delays[0] <= 2 and 4 <= delays[2] <= 8
    assert max(delays) <= 60


def test_error_ratio_pause_needs_a_sample():
    config = SendingConfig(max_error_ratio=0.5, error_ratio_min_sample=100)
    assert error_ratio_reason({"attempted": "50", "failed": "50"}, config) == ""
    assert "60 of the last 100" in error_ratio_reason({b"attempted": b"100", b"failed": b"60"}, config)


def test_to_utc_handles_zones_and_refuses_the_skipped_hour():
    assert to_utc("Asia/Tokyo", "2030-01-01T09:00").isoformat() == "2030-01-01T00:00:00+00:00"
    with pytest.raises(SendingError):
        to_utc("America/New_York", "2030-03-10T02:30")
    with pytest.raises(SendingError):
        to_utc("UTC", "tomorrow at noon")
