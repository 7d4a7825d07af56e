"""The segment rule builder: field, operator, value per rule; match all/any; the live count beside it."""

from __future__ import annotations

import reflex as rx

from app.domain import segment_rules as rules_domain
from state.base import AppState
from state.segments import SegmentEditorState

E = SegmentEditorState
CAN_MANAGE = AppState.can_manage_audiences  # display only; the server checks audiences:manage
READ_ONLY = ~CAN_MANAGE


def _op_items(ops: tuple[str, ...]) -> list[rx.Component]:
    return [rx.select.item(rules_domain.OPERATORS[o], value=o) for o in ops]


def _rule_name(what: str, index: rx.Var) -> rx.Var:
    """ "Condition of rule 2": each rule's controls named apart (the row has no visible label of its own)."""
    return what + " of rule " + (index + 1).to_string()


def _op_select(rule: rx.Var, index: rx.Var) -> rx.Component:
    def select_for(ops: tuple[str, ...]) -> rx.Component:
        return rx.select.root(
            rx.select.trigger(width="100%", class_name="rule-op", aria_label=_rule_name("Condition", index)),
            rx.select.content(*_op_items(ops)),
            value=rule["op"],
            on_change=lambda v: E.set_rule_op(rule["rid"], v),
            disabled=READ_ONLY,
        )

    return rx.match(
        rule["kind"],
        ("date", select_for(rules_domain.DATE_OPERATORS)),
        ("custom", select_for(rules_domain.CUSTOM_OPERATORS)),
        select_for(rules_domain.TEXT_OPERATORS),
    )


def _value_input(rule: rx.Var, index: rx.Var) -> rx.Component:
    is_date = (rule["op"] == "before") | (rule["op"] == "after")
    return rx.cond(
        rule["needs_value"] == "yes",
        rx.cond(
            is_date,
            rx.input(
                type="date",
                value=rule["value"],
                on_change=lambda v: E.set_rule_value(rule["rid"], v),
                width="100%",
                class_name="rule-value",
                aria_label=_rule_name("Value", index),
                disabled=READ_ONLY,
            ),
            rx.input(
                value=rule["value"],
                on_change=lambda v: E.set_rule_value(rule["rid"], v),
                placeholder=rx.cond(rule["op"] == "in", "values, separated by commas", "value"),
                debounce_timeout=400,
                width="100%",
                class_name="rule-value",
                aria_label=_rule_name("Value", index),
                disabled=READ_ONLY,
            ),
        ),
        rx.text("—", color=rx.color("gray", 9), width="100%"),
    )


def _rule(rule: rx.Var, index: rx.Var) -> rx.Component:
    return rx.hstack(
        rx.text(
            rx.cond(index == 0, "Where", rx.cond(E.match == "all", "and", "or")),
            size="2",
            color=rx.color("gray", 10),
            width="48px",
        ),
        rx.box(
            rx.select.root(
                rx.select.trigger(width="100%", class_name="rule-field", aria_label=_rule_name("Field", index)),
                rx.select.content(rx.foreach(E.field_options, lambda o: rx.select.item(o["label"], value=o["value"]))),
                value=rule["field"],
                on_change=lambda v: E.set_rule_field(rule["rid"], v),
                disabled=READ_ONLY,
            ),
            width="30%",
        ),
        rx.box(_op_select(rule, index), width="24%"),
        rx.box(_value_input(rule, index), flex="1"),
        rx.cond(
            CAN_MANAGE,
            rx.icon_button(
                rx.icon("trash-2", size=14),
                variant="ghost",
                color_scheme="gray",
                on_click=E.remove_rule(rule["rid"]),
                aria_label="Remove this rule",
                class_name="rule-remove",
            ),
        ),
        key=rule["rid"],
        align="center",
        width="100%",
        spacing="2",
        class_name="segment-rule",
    )


def rule_builder() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.text("Contacts matching", size="2", id="segment-match-before"),
            rx.select.root(
                # Read as one sentence with the words around it: "Contacts matching all of these rules".
                rx.select.trigger(
                    id="segment-match", aria_labelledby="segment-match-before segment-match segment-match-after"
                ),
                rx.select.content(rx.select.item("all", value="all"), rx.select.item("any", value="any")),
                value=E.match,
                on_change=E.set_match,
                disabled=READ_ONLY,
                size="2",
            ),
            rx.text("of these rules", size="2", id="segment-match-after"),
            align="center",
            spacing="2",
        ),
        rx.vstack(rx.foreach(E.rules, _rule), width="100%", spacing="2", id="segment-rules"),
        rx.cond(
            CAN_MANAGE,
            rx.button(
                rx.icon("plus", size=14),
                "Add rule",
                variant="soft",
                size="2",
                on_click=E.add_rule,
                id="segment-add-rule",
            ),
        ),
        width="100%",
        spacing="3",
        padding="16px",
        border=f"1px solid {rx.color('gray', 5)}",
        border_radius="var(--radius-3)",
    )


def live_count() -> rx.Component:
    return rx.vstack(
        rx.text("Contacts in this segment now", size="2", color=rx.color("gray", 10)),
        rx.cond(
            E.live_count != "",
            rx.heading(E.live_count, size="8", id="segment-live-count"),
            rx.heading("—", size="8", color=rx.color("gray", 8), id="segment-live-count"),
        ),
        rx.cond(
            E.count_error != "", rx.text(E.count_error, size="1", color=rx.color("amber", 11), id="segment-count-error")
        ),
        rx.text(
            "Rules are evaluated whenever the segment is used: contacts added later that match are in it.",
            size="1",
            color=rx.color("gray", 9),
        ),
        padding="16px",
        border_radius="var(--radius-3)",
        background=rx.color("accent", 2),
        border=f"1px solid {rx.color('accent', 5)}",
        width="280px",
        min_width="240px",
        spacing="2",
    )
