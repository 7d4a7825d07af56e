"""Template components -> the variables a campaign fills -> the send request's components."""

from __future__ import annotations

import pytest

from app.domain.template_components import clean_parameter_text, placeholders, template_variables
from app.whatsapp.components import MissingVariableError, build_send_components

SPRING_SALE = [  # as in app/services/demo_seed.py (Meta's GET message_templates shape)
    {"type": "HEADER", "format": "TEXT", "text": "Spring Sale: {{1}} off", "example": {"header_text": ["25%"]}},
    {
        "type": "BODY",
        "text": "Hi {{1}}, our Spring Sale is on! Use code {{2}} at checkout to save on everything until {{3}}.",
        "example": {"body_text": [["Maria", "SPRING25", "March 31"]]},
    },
    {"type": "FOOTER", "text": "Reply STOP to opt out"},
]
EVENT_INVITE = [
    {"type": "HEADER", "format": "TEXT", "text": "You're invited"},
    {
        "type": "BODY",
        "text": "Hi {{first_name}}, join us on {{event_date}}. See you {{first_name}}!",
        "example": {
            "body_text_named_params": [
                {"param_name": "first_name", "example": "Maria"},
                {"param_name": "event_date", "example": "April 12"},
            ]
        },
    },
    {
        "type": "BUTTONS",
        "buttons": [{"type": "QUICK_REPLY", "text": "Count me in"}, {"type": "QUICK_REPLY", "text": "Not interested"}],
    },
]
WITH_URL = [
    {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["https://cdn.example.com/h.jpg"]}},
    {"type": "BODY", "text": "Your order {{1}} is ready."},
    {
        "type": "BUTTONS",
        "buttons": [
            {"type": "QUICK_REPLY", "text": "Thanks"},
            {
                "type": "URL",
                "text": "Track",
                "url": "https://x.example/t/{{1}}",
                "example": ["https://x.example/t/abc"],
            },
            {"type": "COPY_CODE", "example": "SAVE10"},
        ],
    },
]


def test_placeholders_numbered_by_value_named_by_first_appearance():
    assert placeholders("{{2}} and {{1}} and {{10}} and {{2}}") == ["1", "2", "10"]
    assert placeholders("Hi {{ name }}, {{date}} {{name}}") == ["name", "date"]
    assert placeholders(None) == [] and placeholders("no vars") == []


def test_variables_positional_with_examples():
    variables = template_variables(SPRING_SALE)
    assert [v.key for v in variables] == ["header.1", "body.1", "body.2", "body.3"]
    assert [v.example for v in variables] == ["25%", "Maria", "SPRING25", "March 31"]


def test_variables_named_and_buttons():
    assert [v.key for v in template_variables(EVENT_INVITE, "NAMED")] == ["body.first_name", "body.event_date"]
    variables = template_variables(WITH_URL)
    assert [(v.key, v.kind) for v in variables] == [
        ("header.image", "image"),
        ("body.1", "text"),
        ("button.1.1", "text"),
        ("button.2.coupon_code", "coupon_code"),
    ]
    assert variables[2].button_index == 1 and variables[2].example == "https://x.example/t/abc"


def test_build_positional_header_and_body():
    components = build_send_components(
        SPRING_SALE, {"header.1": "30%", "body.1": "Ana", "body.2": "X1", "body.3": "May 2"}
    )
    assert components == [
        {"type": "header", "parameters": [{"type": "text", "text": "30%"}]},
        {
            "type": "body",
            "parameters": [
                {"type": "text", "text": "Ana"},
                {"type": "text", "text": "X1"},
                {"type": "text", "text": "May 2"},
            ],
        },
    ]


def test_build_named_parameters_and_optional_quick_reply_payload():
    components = build_send_components(
        EVENT_INVITE, {"body.first_name": "Ana", "body.event_date": "May 2", "button.1.payload": "rcpt-42-no"}, "NAMED"
    )
    assert components == [
        {
            "type": "body",
            "parameters": [
                {"type": "text", "parameter_name": "first_name", "text": "Ana"},
                {"type": "text", "parameter_name": "event_date", "text": "May 2"},
            ],
        },
        {
            "type": "button",
            "sub_type": "quick_reply",
            "index": "1",
            "parameters": [{"type": "payload", "payload": "rcpt-42-no"}],
        },
    ]


def test_build_media_header_url_and_copy_code_buttons():
    components = build_send_components(
        WITH_URL,
        {
            "header.image": "https://cdn.example.com/a.jpg",
            "body.1": "#12",
            "button.1.1": "abc123",
            "button.2.coupon_code": "SAVE10",
        },
    )
    assert components == [
        {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://cdn.example.com/a.jpg"}}]},
        {"type": "body", "parameters": [{"type": "text", "text": "#12"}]},
        {"type": "button", "sub_type": "url", "index": "1", "parameters": [{"type": "text", "text": "abc123"}]},
        {
            "type": "button",
            "sub_type": "copy_code",
            "index": "2",
            "parameters": [{"type": "coupon_code", "coupon_code": "SAVE10"}],
        },
    ]


def test_template_without_variables_needs_no_components():
    assert build_send_components([{"type": "BODY", "text": "Hello"}], {}) == []


def test_missing_or_blank_values_are_refused_with_their_keys():
    with pytest.raises(MissingVariableError) as info:
        build_send_components(SPRING_SALE, {"header.1": "30%", "body.1": "  ", "body.3": None})
    assert info.value.keys == ["body.1", "body.2", "body.3"]


def test_parameter_text_is_cleaned_the_way_meta_requires():
    assert clean_parameter_text("a\nb\tc") == "a b c"
    assert clean_parameter_text("a      b") == "a b"
    assert clean_parameter_text("a    b") == "a    b"  # 4 spaces are allowed
    assert clean_parameter_text(42) == "42" and clean_parameter_text(None) == ""
    components = build_send_components([{"type": "BODY", "text": "{{1}}"}], {"body.1": " line1\r\nline2 "})
    assert components[0]["parameters"][0]["text"] == "line1 line2"
