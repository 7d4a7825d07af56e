"""The "New template" dialog (Sandbox): Meta's fields on the left, a live WhatsApp preview on the right."""

from __future__ import annotations

import reflex as rx

from app.domain import template_rules as rules
from components.common import field_label
from components.whatsapp_preview import whatsapp_preview
from state.templates import TemplatesState

_CATEGORY_LABELS = {"MARKETING": "Marketing", "UTILITY": "Utility"}


def _label(text: str, hint: str = "", control_id: str = "") -> rx.Component:
    return rx.hstack(
        field_label(text, control_id) if control_id else rx.text(text, size="2", weight="medium"),
        rx.text(hint, size="1", color=rx.color("gray", 10)) if hint else rx.fragment(),
        spacing="2",
        align="baseline",
    )


def _text_input(label: str, field: str, placeholder: str, hint: str = "", max_length: int | None = None):
    return rx.vstack(
        _label(label, hint, f"template-{field.replace('_', '-')}"),
        rx.input(
            value=TemplatesState.draft[field],
            placeholder=placeholder,
            width="100%",
            on_change=lambda v: TemplatesState.set_draft_field(field, v),
            debounce_timeout=250,
            id=f"template-{field.replace('_', '-')}",
            max_length=max_length,
        ),
        spacing="1",
        width="100%",
    )


def _select(label: str, field: str, options: dict[str, str], select_id: str) -> rx.Component:
    return rx.vstack(
        _label(label, control_id=select_id),
        rx.select.root(
            rx.select.trigger(width="100%", id=select_id, aria_labelledby=select_id + "-label"),
            rx.select.content(*[rx.select.item(text, value=value) for value, text in options.items()]),
            value=TemplatesState.draft[field],
            on_change=lambda v: TemplatesState.set_draft_field(field, v),
        ),
        spacing="1",
        width="100%",
    )


def _example_input(variable: rx.Var) -> rx.Component:
    return rx.hstack(
        rx.code(variable["label"], size="2", min_width="120px"),
        rx.input(
            value=variable["example"],
            placeholder="Example value",
            width="100%",
            debounce_timeout=250,
            on_change=lambda v: TemplatesState.set_draft_example(variable["key"], v),
            id="template-example-" + variable["key"].replace(".", "-"),
            aria_label="Example for " + variable["label"],
        ),
        align="center",
        width="100%",
        spacing="2",
    )


def _fields() -> rx.Component:
    return rx.vstack(
        _text_input("Name", "name", "spring_sale_2025", "lowercase letters, digits, underscores", 512),
        rx.hstack(
            _select("Language", "language", rules.LANGUAGES, "template-language"),
            _select("Category", "category", _CATEGORY_LABELS, "template-category"),
            _select(
                "Variables",
                "parameter_format",
                {rules.POSITIONAL: "Numbered {{1}}", rules.NAMED: "Named {{first_name}}"},
                "template-parameter-format",
            ),
            width="100%",
            spacing="3",
        ),
        _text_input("Header", "header", "Spring sale: {{1}} off", "optional, one variable at most", rules.MAX_HEADER),
        rx.vstack(
            _label("Body", "required; *bold* _italic_ ~strike~", "template-body"),
            rx.text_area(
                value=TemplatesState.draft["body"],
                width="100%",
                rows="5",
                debounce_timeout=250,
                placeholder=rx.cond(
                    TemplatesState.draft["parameter_format"] == rules.NAMED,
                    "Hi {{first_name}}, our sale ends on {{end_date}}. See you soon!",
                    "Hi {{1}}, our sale ends on {{2}}. See you soon!",
                ),
                on_change=lambda v: TemplatesState.set_draft_field("body", v),
                id="template-body",
                max_length=rules.MAX_BODY,
            ),
            spacing="1",
            width="100%",
        ),
        rx.cond(
            TemplatesState.draft_variables.length() > 0,
            rx.vstack(
                _label("Examples", "Meta reviews the template with these values"),
                rx.foreach(TemplatesState.draft_variables, _example_input),
                spacing="2",
                width="100%",
                id="template-examples",
            ),
        ),
        _text_input("Footer", "footer", "Reply STOP to opt out", "optional", rules.MAX_FOOTER),
        rx.vstack(
            rx.text("Quick-reply buttons", size="2", weight="medium", id="template-buttons-label"),
            rx.text("optional, up to 3", size="1", color=rx.color("gray", 10)),
            rx.hstack(
                *[
                    rx.input(
                        value=TemplatesState.draft[f"button_{i}"],
                        placeholder=f"Button {i}",
                        width="100%",
                        max_length=rules.MAX_BUTTON_TEXT,
                        debounce_timeout=250,
                        id=f"template-button-{i}",
                        aria_label=f"Quick-reply button {i}",
                        on_change=lambda v, i=i: TemplatesState.set_draft_field(f"button_{i}", v),
                    )
                    for i in range(1, rules.MAX_BUTTONS + 1)
                ],
                width="100%",
                spacing="2",
            ),
            spacing="1",
            width="100%",
        ),
        spacing="3",
        width="100%",
    )


def new_template_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("New template for ", TemplatesState.draft_channel),
            rx.dialog.description(
                "The Sandbox approves templates at once. Templates of a real WhatsApp number are written and "
                "reviewed in Meta's WhatsApp Manager, then synced here.",
                size="2",
                color=rx.color("gray", 10),
                margin_bottom="12px",
            ),
            rx.hstack(
                rx.box(_fields(), flex="1", min_width="0"),
                rx.vstack(
                    rx.text("Preview", size="2", weight="medium", color=rx.color("gray", 11)),
                    whatsapp_preview(
                        TemplatesState.draft_preview,
                        "draft-preview",
                        business=TemplatesState.draft_business,
                        initials=TemplatesState.draft_initials,
                    ),
                    width="340px",
                    min_width="300px",
                    spacing="2",
                ),
                spacing="5",
                align="start",
                width="100%",
            ),
            rx.cond(
                TemplatesState.draft_errors.length() > 0,
                rx.callout.root(
                    rx.callout.icon(rx.icon("triangle-alert")),
                    rx.vstack(rx.foreach(TemplatesState.draft_errors, lambda e: rx.text(e, size="2")), spacing="1"),
                    color_scheme="red",
                    size="1",
                    id="template-form-errors",
                    margin_top="12px",
                ),
            ),
            rx.hstack(
                rx.button(
                    "Cancel",
                    variant="soft",
                    color_scheme="gray",
                    on_click=TemplatesState.close_new_template,
                    id="template-form-cancel",
                ),
                rx.button("Create template", on_click=TemplatesState.save_template, id="template-form-submit"),
                justify="end",
                width="100%",
                margin_top="16px",
            ),
            max_width="980px",
            id="new-template-dialog",
        ),
        open=TemplatesState.create_open,
        on_open_change=TemplatesState.create_open_changed,
    )
