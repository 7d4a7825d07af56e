"""Meta's rules for a template written in Hubcast and the component JSON it becomes (the preview:
tests/unit/test_whatsapp_markup.py)."""

from __future__ import annotations

import pytest

from app.domain.template_components import template_variables
from app.domain.template_rules import (
    NAMED,
    TemplateDraft,
    TemplateRuleError,
    build_components,
    draft_from_form,
    draft_variables,
    validate_draft,
)
from app.whatsapp.components import build_send_components

GOOD = TemplateDraft(
    name="spring_sale_2025",
    language="en_US",
    category="MARKETING",
    header="Spring sale: {{1}} off",
    body="Hi {{1}}, use code {{2}} before {{3}}. See you!",
    footer="Reply STOP to opt out",
    buttons=("Yes please", "Stop promotions"),
    examples={"header.1": "25%", "body.1": "Maria", "body.2": "SPRING25", "body.3": "March 31"},
)


def _errors(**changes) -> list[str]:
    return validate_draft(TemplateDraft(**{**GOOD.__dict__, **changes}))


def test_a_valid_positional_draft_becomes_metas_component_json():
    assert validate_draft(GOOD) == []
    assert build_components(GOOD) == [
        {"type": "HEADER", "format": "TEXT", "text": "Spring sale: {{1}} off", "example": {"header_text": ["25%"]}},
        {
            "type": "BODY",
            "text": "Hi {{1}}, use code {{2}} before {{3}}. See you!",
            "example": {"body_text": [["Maria", "SPRING25", "March 31"]]},
        },
        {"type": "FOOTER", "text": "Reply STOP to opt out"},
        {
            "type": "BUTTONS",
            "buttons": [
                {"type": "QUICK_REPLY", "text": "Yes please"},
                {"type": "QUICK_REPLY", "text": "Stop promotions"},
            ],
        },
    ]


def test_the_built_components_feed_the_variables_and_the_send_request():
    components = build_components(GOOD)
    variables = template_variables(components)
    assert [(v.key, v.example) for v in variables] == [
        ("header.1", "25%"),
        ("body.1", "Maria"),
        ("body.2", "SPRING25"),
        ("body.3", "March 31"),
    ]
    sent = build_send_components(components, {"header.1": "30%", "body.1": "Ana", "body.2": "X", "body.3": "May"})
    assert sent[1] == {
        "type": "body",
        "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "X"}, {"type": "text", "text": "May"}],
    }


def test_a_named_draft_uses_named_parameter_examples():
    draft = TemplateDraft(
        name="invite",
        language="fr",
        category="UTILITY",
        parameter_format=NAMED,
        header="Bonjour {{first_name}}",
        body="Rendez-vous le {{event_date}} à {{city}}, merci.",
        examples={"header.first_name": "Camille", "body.event_date": "12 avril", "body.city": "Lyon"},
    )
    assert validate_draft(draft) == []
    header, body = build_components(draft)
    assert header["example"] == {"header_text_named_params": [{"param_name": "first_name", "example": "Camille"}]}
    assert body["example"] == {
        "body_text_named_params": [
            {"param_name": "event_date", "example": "12 avril"},
            {"param_name": "city", "example": "Lyon"},
        ]
    }
    assert [v.key for v in template_variables([header, body])] == ["header.first_name", "body.event_date", "body.city"]


@pytest.mark.parametrize("name", ["Spring_Sale", "spring sale", "spring-sale", "été", "x" * 513, ""])
def test_template_names_follow_metas_rule(name):
    errors = _errors(name=name)
    assert len(errors) == 1 and ("name" in errors[0]), errors


def test_body_variables_must_be_numbered_consecutively_from_one():
    errors = _errors(
        body="Hi {{1}}, your code is {{3}} today.", examples={"header.1": "25%", "body.1": "A", "body.3": "C"}
    )
    assert errors == [
        "Body variables must be numbered consecutively from {{1}}: found {{1}}, {{3}}, expected {{1}}, {{2}}."
    ]
    assert _errors(body="Hi {{2}}, welcome.", examples={"header.1": "x", "body.2": "A"})[0].startswith(
        "Body variables must be numbered consecutively"
    )


def test_every_variable_needs_an_example():
    errors = _errors(examples={"header.1": "25%", "body.1": "Maria", "body.2": " "})
    assert errors == ["Give an example value for every variable (Meta requires them for review): {{2}}, {{3}}."]
    assert "{{1}} in the header" in _errors(examples={"body.1": "a", "body.2": "b", "body.3": "c"})[0]


def test_variable_format_must_match_the_templates_parameter_format():
    named_in_positional = _errors(
        body="Hi {{first_name}}, welcome.", examples={"header.1": "x", "body.first_name": "A"}
    )
    assert any("named variables" in e for e in named_in_positional)
    numbered_in_named = _errors(parameter_format=NAMED, header="", body="Hi {{1}}, welcome.", examples={"body.1": "A"})
    assert any("numbered variables" in e for e in numbered_in_named)
    bad_name = _errors(parameter_format=NAMED, header="", body="Hi {{First}}, welcome.", examples={"body.First": "A"})
    assert any("lowercase" in e for e in bad_name)


def test_header_has_at_most_one_variable_and_it_is_number_one():
    assert "The header may contain at most one variable." in _errors(
        header="{{1}} and {{2}}", examples={**GOOD.examples, "header.2": "b"}
    )
    assert "The header's variable must be {{1}}." in _errors(
        header="Sale {{2}}", examples={**GOOD.examples, "header.2": "b"}
    )


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"body": ""}, "Enter the message body."),
        ({"body": "{{1}} is your code, {{2}} {{3}}"}, "The body may not start or end with a variable"),
        ({"body": "Your code is {{1}} {{2}} {{3}}"}, "The body may not start or end with a variable"),
        ({"body": "Hi {{1}, welcome {{2}} {{3}}."}, "malformed variable"),
        ({"body": "Hi {{ first name }} there {{1}} {{2}} {{3}}."}, "malformed variable"),
        ({"body": "x" * 1025}, "The body is too long"),
        ({"header": "h" * 61}, "The header is too long"),
        ({"footer": "Code {{1}}"}, "The footer may not contain variables."),
        ({"footer": "f" * 61}, "The footer is too long"),
        ({"buttons": ("a", "b", "c", "d")}, "At most 3 quick-reply buttons."),
        ({"buttons": ("a" * 26,)}, "is too long"),
        ({"buttons": ("Yes", "yes")}, "Each quick-reply button needs a different text."),
        ({"language": "xx_YY"}, "Choose a language WhatsApp supports"),
        ({"category": "AUTHENTICATION"}, "The category must be Marketing or Utility"),
        ({"parameter_format": "WHATEVER"}, "The variable format must be"),
    ],
)
def test_each_rule_gives_a_specific_message(changes, expected):
    assert any(expected in e for e in _errors(**changes)), _errors(**changes)


def test_build_refuses_an_invalid_draft_with_every_error():
    with pytest.raises(TemplateRuleError) as info:
        build_components(TemplateDraft(name="Bad Name", body=""))
    assert "Enter the message body." in info.value.errors and len(info.value.errors) >= 2


def test_crafted_form_values_never_raise():
    for form in (None, {}, {"name": {"x": 1}, "body": ["a"], "button_1": 5, "language": None}, "text", 1):
        draft = draft_from_form(form, {"body.1": {"nested": True}, 3: 4})  # type: ignore[arg-type]
        assert isinstance(validate_draft(draft), list)
    draft = draft_from_form(
        {
            "name": " promo ",
            "body": "Hi {{1}}!",
            "button_1": " Yes ",
            "button_2": "",
            "category": "marketing",
            "language": "en_US",
        },
        {"body.1": " Ana "},
    )
    assert draft.name == "promo" and draft.buttons == ("Yes",) and draft.category == "MARKETING"
    assert draft_variables(draft) == [("body.1", "body", "1")] and draft.examples["body.1"] == "Ana"
