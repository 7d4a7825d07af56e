"""Issue 12 point 1 (pure parts): which templates Hubcast can fill, the send components it builds for a LOCATION
header and an OTP button, and the Sandbox's validation of every component type (Meta's 131008 / 132000)."""

from __future__ import annotations

import pytest

from app.domain.template_support import unsendable_reason
from app.domain.variables import resolve
from app.whatsapp.account_webhooks import parse_account_changes
from app.whatsapp.components import MissingVariableError, build_send_components, template_variables
from app.whatsapp.sandbox.catalog import Catalog, load_templates
from app.whatsapp.sandbox.validation import ApiError, validate_send

CATALOG = Catalog(load_templates())
LOCATION = {
    "header.latitude": "48.8566",
    "header.longitude": "2.3522",
    "header.name": "Hubcast Store",
    "header.address": "1 rue de Rivoli, Paris",
    "body.1": "Ana",
}


def components_of(name: str) -> list[dict]:
    return CATALOG.find(name, "en_US")["components"]


def send(name: str, components: list) -> str:
    body = {
        "messaging_product": "whatsapp",
        "to": "+33612345678",
        "type": "template",
        "template": {"name": name, "language": {"code": "en_US"}, "components": components},
    }
    return validate_send(body, CATALOG).text


def code_of(name: str, components: list) -> int:
    with pytest.raises(ApiError) as exc:
        send(name, components)
    return exc.value.code


@pytest.mark.parametrize(
    "name,words",
    [
        ("autumn_carousel", "a carousel"),
        ("flash_offer", "a limited-time offer"),
        ("catalog_picks", "a catalog button"),
        ("product_sections", "a multi-product button"),
        ("signup_flow", "a WhatsApp Flow button"),
    ],
)
def test_templates_hubcast_cannot_fill_say_why(name, words):
    reason = unsendable_reason(components_of(name))
    assert reason.startswith("Hubcast cannot send this template: it has " + words)


@pytest.mark.parametrize("name", ["store_visit", "login_code", "spring_sale", "event_invite", "order_update"])
def test_templates_hubcast_fills_are_sendable(name):
    assert unsendable_reason(components_of(name)) == ""


def test_unknown_component_and_button_types_are_refused_not_guessed():
    assert "a VOICE_CALL button" in unsendable_reason(
        [{"type": "BODY", "text": "Hi"}, {"type": "BUTTONS", "buttons": [{"type": "VOICE_CALL", "text": "Call"}]}]
    )
    assert "a CALL_PERMISSION_REQUEST component" in unsendable_reason(
        [{"type": "BODY", "text": "Hi"}, {"type": "CALL_PERMISSION_REQUEST"}]
    )


def test_a_location_header_is_filled_and_the_sandbox_accepts_it():
    components = build_send_components(components_of("store_visit"), LOCATION)
    location = components[0]["parameters"][0]["location"]
    assert location == {
        "latitude": 48.8566,
        "longitude": 2.3522,
        "name": "Hubcast Store",
        "address": "1 rue de Rivoli, Paris",
    }
    assert send("store_visit", components).startswith("[location: Hubcast Store, 1 rue de Rivoli, Paris]\nHi Ana")


def test_a_location_coordinate_that_is_not_a_number_is_missing_and_falls_back():
    keys = [v.key for v in template_variables(components_of("store_visit"))]
    assert keys == ["header.latitude", "header.longitude", "header.name", "header.address", "body.1"]
    with pytest.raises(MissingVariableError) as exc:
        build_send_components(components_of("store_visit"), {**LOCATION, "header.latitude": "north"})
    assert exc.value.keys == ["header.latitude"]
    mapping = {"header.latitude": {"source": "field", "key": "city", "fallback": "45.76"}}
    assert resolve(["header.latitude"], mapping, contact={"city": "Lyon"}).values == {"header.latitude": "45.76"}
    assert resolve(
        ["header.latitude"], {"header.latitude": {"source": "field", "key": "city"}}, contact={"city": "95"}
    ).missing


def test_the_otp_button_carries_the_bodys_code():
    components = build_send_components(components_of("login_code"), {"body.1": "482913"})
    assert components[1] == {
        "type": "button",
        "sub_type": "url",
        "index": "0",
        "parameters": [{"type": "text", "text": "482913"}],
    }
    assert send("login_code", components).startswith("*482913* is your verification code.")


@pytest.mark.parametrize(
    "name,mutate,code",
    [
        ("store_visit", lambda c: c.pop(0), 131008),  # no location
        ("store_visit", lambda c: c[0]["parameters"][0]["location"].pop("address"), 131008),
        ("store_visit", lambda c: c[0]["parameters"].__setitem__(0, {"type": "text", "text": "x"}), 132012),
        ("login_code", lambda c: c.pop(1), 131008),  # the OTP button's code missing
    ],
)
def test_the_sandbox_refuses_missing_location_or_code(name, mutate, code):
    values = LOCATION if name == "store_visit" else {"body.1": "482913"}
    components = build_send_components(components_of(name), values)
    mutate(components)
    assert code_of(name, components) == code


BODY = [{"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}]


@pytest.mark.parametrize(
    "name,extra,code",
    [
        ("autumn_carousel", [], 131008),
        (
            "autumn_carousel",
            [{"type": "carousel", "cards": [{"card_index": 0, "components": [{"type": "body"}]}]}],
            132000,
        ),
        ("flash_offer", [], 131008),
        ("catalog_picks", [], 131008),
        ("product_sections", [], 131008),
        ("signup_flow", [], 131008),
        (
            "signup_flow",
            [{"type": "button", "sub_type": "flow", "index": "0", "parameters": [{"type": "action", "action": {}}]}],
            131008,
        ),
    ],
)
def test_the_sandbox_refuses_what_hubcast_would_not_fill(name, extra, code):
    assert code_of(name, BODY + extra) == code


def test_account_changes_are_parsed_and_odd_ones_skipped():
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "200",
                "changes": [
                    {
                        "field": "message_template_status_update",
                        "value": {
                            "event": "PAUSED",
                            "message_template_id": 7,
                            "message_template_name": "x",
                            "message_template_language": "en_US",
                            "reason": "NONE",
                            "other_info": {"title": "FIRST_PAUSE", "description": "Low quality"},
                        },
                    },
                    {"field": "message_template_status_update", "value": {"event": "PAUSED"}},  # no template: skipped
                    {
                        "field": "user_preferences",
                        "value": {
                            "metadata": {"phone_number_id": "1"},
                            "user_preferences": [{"wa_id": "336", "category": "marketing_messages", "value": "stop"}],
                        },
                    },
                    {
                        "field": "phone_number_quality_update",
                        "value": {"event": "UPGRADE", "current_limit": "TIER_10K"},
                    },
                    {"field": "something_new", "value": {"event": "X"}},
                    {"field": "account_update", "value": "not an object"},
                ],
            }
        ],
    }
    changes = parse_account_changes(payload)
    assert [c.field for c in changes] == [
        "message_template_status_update",
        "user_preferences",
        "phone_number_quality_update",
    ]
    assert changes[0].reason == "FIRST_PAUSE: Low quality" and changes[0].template.external_id == "7"
    assert changes[1].preferences[0].value == "stop" and changes[2].new_value == "TIER_10K"


def test_the_sandboxs_template_webhooks_change_its_catalogue_until_reset():
    from app.whatsapp.sandbox.account_changes import build_change
    from app.whatsapp.sandbox.config import SandboxConfig

    catalog = Catalog(load_templates())
    spec = {"message_template_name": "spring_sale", "message_template_language": "en_US"}
    field, value = build_change(
        {"field": "message_template_status_update", "value": {**spec, "event": "PAUSED"}}, catalog, SandboxConfig()
    )
    assert field == "message_template_status_update" and value["message_template_id"] == int(
        catalog.find("spring_sale", "en_US")["id"]
    )
    assert catalog.find("spring_sale", "en_US")["status"] == "PAUSED"
    build_change(
        {"field": "message_template_status_update", "value": {**spec, "event": "DISABLED"}, "catalog": False},
        catalog,
        SandboxConfig(),
    )
    assert catalog.find("spring_sale", "en_US")["status"] == "PAUSED", "catalog: false leaves the catalogue alone"
    catalog.restore()
    assert catalog.find("spring_sale", "en_US")["status"] == "APPROVED"
    with pytest.raises(ApiError):
        build_change(
            {"field": "message_template_status_update", "value": {**spec, "event": "WHATEVER"}},
            catalog,
            SandboxConfig(),
        )
