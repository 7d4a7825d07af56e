"""Wizard step 2, "Design your message": template, variables mapped to fields/columns, live preview (S10)."""

from __future__ import annotations

import reflex as rx

from components.common import field_label
from components.whatsapp_preview import whatsapp_preview
from state.wizard import WizardState as W
from state.wizard_design import FIXED_TEXT
from state.wizard_design import WizardDesignState as S


def _variable(v: rx.Var) -> rx.Component:
    return rx.hstack(
        rx.badge(v["label"], variant="soft", size="2", min_width="72px"),
        rx.box(
            rx.select.root(
                rx.select.trigger(
                    placeholder="Value from…",
                    width="100%",
                    id="wizard-var-" + v["key"],
                    # The row's visible placeholder ("{{1}}") is in the name: "Value for {{1}}".
                    aria_label="Value for " + v["label"],
                ),
                rx.select.content(
                    rx.select.group(
                        rx.select.label(rx.cond(W.audience_kind == "csv", "File column", "Contact field")),
                        rx.foreach(S.field_options, lambda f: rx.select.item(f, value=f)),
                    ),
                    rx.select.separator(),
                    rx.select.item("The same text for everyone", value=FIXED_TEXT),
                ),
                value=v["ref"],
                on_change=lambda value: S.set_var_ref(v["key"], value),
            ),
            flex="1",
        ),
        rx.input(
            default_value=v["fallback"],
            # Remounted (to show the stored fallback) only when another draft or template is opened: keyed on
            # the source too, it was rebuilt when the server answered the source select, losing what was typed.
            key=W.campaign_id + "-" + S.template_id + "-" + v["key"],
            placeholder=rx.cond(v["ref"] == FIXED_TEXT, "Text", "Fallback if empty (optional)"),
            on_blur=lambda value: S.set_var_fallback(v["key"], value),
            id="wizard-fallback-" + v["key"],
            aria_label=rx.cond(v["ref"] == FIXED_TEXT, "Text for ", "Fallback for ") + v["label"],
            flex="1",
        ),
        width="100%",
        align="center",
        spacing="2",
    )


def trial_send_card() -> rx.Component:
    """ "Send a test message": the real sending path to one number; not counted in the campaign."""
    blocked = W.problems.length() > 0
    return rx.card(
        rx.vstack(
            rx.text("Send a test message", weight="bold", size="2"),
            rx.text(
                "Sends this message to one number the way the campaign will, with the first recipient's "
                "values (or that number's own, if it is in the audience). It is marked as a test and not "
                "counted in the campaign.",
                size="1",
                color=rx.color("gray", 10),
            ),
            rx.hstack(
                rx.input(
                    value=S.trial_number,
                    on_change=S.set_trial_number,
                    placeholder="+33 6 12 34 56 78",
                    type="tel",
                    id="test-send-number",
                    aria_label="Phone number for the test",
                    flex="1",
                ),
                rx.button(
                    rx.cond(S.trial_busy, rx.spinner(size="1"), rx.icon("send", size=14)),
                    "Send test",
                    on_click=S.send_trial,
                    disabled=blocked | S.trial_busy,
                    id="test-send-button",
                    variant="soft",
                ),
                width="100%",
                spacing="2",
                align="center",
            ),
            rx.cond(
                blocked,
                rx.text(
                    "Finish the message first: ",
                    W.problems[0],
                    size="1",
                    color=rx.color("gray", 10),
                    id="test-send-disabled-reason",
                ),
            ),
            rx.cond(
                S.trial_result != "",
                rx.hstack(
                    rx.cond(
                        S.trial_ok,
                        rx.icon(
                            "circle-check", size=14, color=rx.color("green", 10), flex_shrink="0", margin_top="2px"
                        ),
                        rx.icon("circle-alert", size=14, color=rx.color("red", 10), flex_shrink="0", margin_top="2px"),
                    ),
                    rx.text(
                        S.trial_result,
                        size="1",
                        id="test-send-result",
                        flex="1",
                        min_width="0",
                        color=rx.cond(S.trial_ok, rx.color("green", 11), rx.color("red", 11)),
                    ),
                    rx.cond(
                        S.trial_send_id != "",
                        rx.button(
                            "Refresh status",
                            size="1",
                            variant="ghost",
                            on_click=S.refresh_trial_status,
                            id="test-send-refresh",
                        ),
                    ),
                    spacing="2",
                    align="start",
                    width="100%",
                ),
            ),
            width="100%",
            spacing="2",
        ),
        width="100%",
        id="test-send-card",
    )


def _unfillable_templates() -> rx.Component:
    """Approved templates the list leaves out because Hubcast cannot fill them, each with the reason."""
    return rx.cond(
        S.unfillable_templates.length() > 0,
        rx.callout.root(
            rx.callout.icon(rx.icon("ban", size=16)),
            rx.vstack(
                rx.text("Approved but not offered: Hubcast cannot fill these templates", weight="medium", size="1"),
                rx.foreach(
                    S.unfillable_templates,
                    lambda t: rx.text(rx.text.strong(t["name"]), " — ", t["reason"], size="1"),
                ),
                spacing="1",
            ),
            color_scheme="gray",
            size="1",
            width="100%",
            margin_top="6px",
            id="wizard-unfillable-templates",
        ),
    )


def design_step() -> rx.Component:
    return rx.vstack(
        rx.vstack(
            field_label("Template", "wizard-template"),
            rx.cond(
                S.template_options.length() > 0,
                rx.select.root(
                    rx.select.trigger(
                        placeholder="Choose an approved template",
                        width="100%",
                        id="wizard-template",
                        aria_labelledby="wizard-template-label",
                    ),
                    rx.select.content(
                        rx.foreach(S.template_options, lambda o: rx.select.item(o["name"], value=o["id"]))
                    ),
                    value=W.template_id,
                    on_change=S.set_template,
                ),
                rx.callout(
                    "This channel has no approved template. Templates must be approved by WhatsApp first.",
                    icon="file-x",
                    size="1",
                    color_scheme="amber",
                    width="100%",
                ),
            ),
            rx.text(
                "Only templates approved by WhatsApp for the chosen channel are listed (name · language).",
                size="1",
                color=rx.color("gray", 10),
            ),
            _unfillable_templates(),
            width="100%",
            spacing="1",
        ),
        rx.cond(
            S.variables.length() > 0,
            rx.vstack(
                rx.text("Variables", size="2", weight="medium"),
                rx.text(
                    "Each placeholder takes a value from the recipient; the fallback is used when that value is empty.",
                    size="1",
                    color=rx.color("gray", 10),
                ),
                rx.foreach(S.variables, _variable),
                width="100%",
                spacing="2",
                id="wizard-variables",
            ),
            rx.cond(
                W.template_id != "", rx.text("This template has no variables.", size="2", color=rx.color("gray", 10))
            ),
        ),
        rx.cond(
            S.skipped > 0,
            rx.callout(
                rx.text(
                    S.skipped,
                    " recipient(s) have an empty value and no fallback: they will be "
                    "skipped. Add a fallback to reach them.",
                    id="wizard-skipped",
                ),
                icon="user-x",
                size="1",
                color_scheme="amber",
                width="100%",
            ),
        ),
        rx.cond(W.template_id != "", trial_send_card()),
        width="100%",
        spacing="5",
    )


def preview_card() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.text("Preview", weight="bold", size="2"),
            rx.spacer(),
            rx.cond(
                S.sample_count > 0,
                rx.hstack(
                    rx.icon_button(
                        rx.icon("chevron-left", size=14),
                        size="1",
                        variant="soft",
                        on_click=S.prev_sample,
                        disabled=S.sample_index <= 0,
                        id="wizard-preview-prev",
                        aria_label="Previous recipient",
                    ),
                    rx.text(S.sample_index + 1, " / ", S.sample_count, size="1", id="wizard-preview-position"),
                    rx.icon_button(
                        rx.icon("chevron-right", size=14),
                        size="1",
                        variant="soft",
                        on_click=S.next_sample,
                        disabled=S.sample_index + 1 >= S.sample_count,
                        id="wizard-preview-next",
                        aria_label="Next recipient",
                    ),
                    spacing="2",
                    align="center",
                ),
            ),
            width="100%",
            align="center",
        ),
        rx.cond(
            S.sample_address != "",
            rx.text("To ", S.sample_address, size="1", color=rx.color("gray", 10), id="wizard-preview-to"),
            rx.text("Example values", size="1", color=rx.color("gray", 10)),
        ),
        whatsapp_preview(
            S.preview,
            "wizard-preview",
            empty_text="Choose a template to see the message as recipients will.",
            business=S.preview_business,
            initials=S.preview_initials,
        ),
        width="100%",
        spacing="2",
    )
