"""The Sandbox's pure parts: request validation (Meta's codes), token bucket, settings, catalogue."""

from __future__ import annotations

import copy

import pytest

from app.whatsapp.components import build_send_components
from app.whatsapp.sandbox.catalog import Catalog, generated_templates, load_templates
from app.whatsapp.sandbox.config import coerce, parse_args
from app.whatsapp.sandbox.ratelimit import TokenBucket
from app.whatsapp.sandbox.validation import ApiError, validate_send

CATALOG = Catalog(load_templates())


def body(name="spring_sale", lang="en_US", components=None, **extra):
    if components is None:
        components = build_send_components(
            CATALOG.find("spring_sale", "en_US")["components"],
            {"header.1": "30%", "body.1": "Ana", "body.2": "X1", "body.3": "May"},
        )
    data = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "+33 6 12 34 56 78",
        "type": "template",
        "template": {"name": name, "language": {"code": lang}, "components": components},
    }
    data.update(extra)
    return data


def code_of(payload) -> int:
    with pytest.raises(ApiError) as info:
        validate_send(payload, CATALOG)
    return info.value.code


def test_a_valid_send_is_accepted_and_rendered():
    accepted = validate_send(body(biz_opaque_callback_data="r:1"), CATALOG)
    assert accepted.wa_id == "33612345678" and accepted.biz_opaque_callback_data == "r:1"
    assert accepted.text.startswith("Spring Sale: 30% off\nHi Ana, our Spring Sale is on! Use code X1")


def test_demo_and_generated_templates_are_served():
    assert CATALOG.find("event_invite", "en_US")["parameter_format"] == "NAMED"
    assert CATALOG.find("order_update", "fr") is not None
    assert len(CATALOG.templates) >= 66  # three pages at limit=25


@pytest.mark.parametrize(
    "mutate,code",
    [
        (lambda b: b.pop("messaging_product"), 100),
        (lambda b: b.pop("to"), 100),
        (lambda b: b.update(to="call me"), 100),
        (lambda b: b.update(type="sticker"), 100),
        (lambda b: b["template"].pop("language"), 100),
        (lambda b: b.update(biz_opaque_callback_data="x" * 513), 100),
        (lambda b: b["template"]["components"].append({"type": "footer"}), 100),
        (lambda b: b["template"].update(name="nope"), 132001),
        (lambda b: b["template"].update(language={"code": "de"}), 132001),
        (lambda b: b["template"].update(name="summer_preview"), 132001),  # PENDING
        (lambda b: b["template"]["components"][1]["parameters"].pop(), 132000),
        (lambda b: b["template"]["components"].pop(0), 132000),  # header variable missing
        (lambda b: b["template"]["components"][1]["parameters"][0].update(text="  "), 131008),
        (lambda b: b["template"]["components"][1]["parameters"][0].update(text="a\nb"), 132018),
    ],
)
def test_invalid_requests_get_metas_codes(mutate, code):
    payload = copy.deepcopy(body())
    mutate(payload)
    assert code_of(payload) == code


def test_named_parameters_must_match_names():
    components = build_send_components(
        CATALOG.find("event_invite", "en_US")["components"], {"body.first_name": "Ana", "body.event_date": "May 2"}
    )
    assert validate_send(body("event_invite", components=components), CATALOG).text.startswith("You're invited\nHi Ana")
    components[0]["parameters"][0]["parameter_name"] = "last_name"
    assert code_of(body("event_invite", components=components)) == 131008


def test_paused_and_disabled_templates():
    paused = next(t for t in CATALOG.templates if t["status"] == "PAUSED")
    disabled = next(t for t in CATALOG.templates if t["status"] == "DISABLED")
    assert code_of(body(paused["name"], paused["language"], components=[])) == 132015
    assert code_of(body(disabled["name"], disabled["language"], components=[])) == 132016


def test_url_button_parameter_is_required():
    template = next(
        t
        for t in generated_templates(60)
        if any(c["type"] == "BUTTONS" and c["buttons"][0]["type"] == "URL" for c in t["components"])
        and t["status"] == "APPROVED"
    )
    from app.whatsapp.components import template_variables

    values = {v.key: "v" for v in template_variables(template["components"])}
    components = build_send_components(template["components"], values)
    assert validate_send(body(template["name"], template["language"], components=components), CATALOG)
    without_button = [c for c in components if c["type"] != "button"]
    assert code_of(body(template["name"], template["language"], components=without_button)) == 131008


def test_token_bucket_allows_a_burst_then_the_rate():
    now = [0.0]
    bucket = TokenBucket(5, clock=lambda: now[0])
    assert sum(bucket.try_acquire() for _ in range(20)) == 5
    now[0] += 0.4
    assert sum(bucket.try_acquire() for _ in range(20)) == 2
    assert all(TokenBucket(0).try_acquire() for _ in range(1000))


def test_settings_from_env_and_args_and_runtime_updates():
    config = parse_args(
        ["--port", "9100", "--sent-delay", "0.1,0.2", "--failure-rules", "0000:131026,0002:131050"],
        environ={"HUBCAST_SANDBOX_MPS": "5", "HUBCAST_SANDBOX_PORT": "1", "HUBCAST_SANDBOX_SEED": "7"},
    )
    assert (config.port, config.mps, config.sent_delay, config.seed) == (9100, 5.0, (0.1, 0.2), 7)
    assert config.failure_rules == {"0000": 131026, "0002": 131050}
    config.update({"mps": "12", "read_ratio": 1, "failure_rules": {"9999": 131049}})
    assert config.mps == 12.0 and config.read_ratio == 1.0 and config.failure_rules == {"9999": 131049}
    for bad in ({"port": 1}, {"nope": 1}, {"read_ratio": 2}, {"mps": -1}):
        with pytest.raises(ValueError):
            config.update(bad)
    assert "access_token" not in config.public() and config.public()["access_token_set"] is True
    assert coerce("seed", "") is None
