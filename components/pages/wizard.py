"""The campaign wizard page: a stepper, the current step on the left, its summary/preview on the right."""

from __future__ import annotations

import reflex as rx

from components import routes
from components.layout import page_shell
from components.wizard_design import design_step, preview_card
from components.wizard_review import review_step, schedule_dialog, send_dialog
from components.wizard_setup import audience_card, setup_step
from state.wizard import WizardState as S
from state.wizard_review import WizardReviewState as R

STEP_LABELS = ("Campaign setup", "Design your message", "Review and send")


def _stepper() -> rx.Component:
    items = []
    for number, label in enumerate(STEP_LABELS, start=1):
        done, current = S.step > number, S.step == number
        items.append(
            rx.hstack(
                rx.center(
                    rx.cond(done, rx.icon("check", size=14), rx.text(str(number), size="2", weight="bold")),
                    width="26px",
                    height="26px",
                    border_radius="9999px",
                    background=rx.cond(current | done, rx.color("accent", 11), rx.color("gray", 4)),  # 5:1 under white
                    color=rx.cond(current | done, "white", rx.color("gray", 11)),
                ),
                rx.text(
                    label,
                    size="2",
                    weight=rx.cond(current, "bold", "regular"),
                    color=rx.cond(current, rx.color("gray", 12), rx.color("gray", 10)),
                ),
                align="center",
                spacing="2",
                id=f"wizard-step-{number}",
                aria_current=rx.cond(current, "step", "false"),
            )
        )
        if number < len(STEP_LABELS):
            items.append(rx.box(height="1px", flex="1", min_width="24px", background=rx.color("gray", 6)))
    return rx.hstack(*items, width="100%", align="center", spacing="3", id="wizard-stepper")


def _problems() -> rx.Component:
    return rx.cond(
        S.problems.length() > 0,
        rx.vstack(
            rx.foreach(
                S.problems,
                lambda p: rx.hstack(
                    rx.icon("info", size=14, color=rx.color("amber", 10)),
                    rx.text(p, size="2"),
                    spacing="2",
                    align="center",
                ),
            ),
            spacing="1",
            id="wizard-problems",
        ),
    )


def _buttons() -> rx.Component:
    return rx.hstack(
        rx.cond(
            S.step > 1,
            rx.button(
                rx.icon("arrow-left", size=14), "Previous", variant="soft", on_click=S.prev_step, id="wizard-previous"
            ),
        ),
        rx.spacer(),
        rx.cond(
            S.step < 3,
            rx.button(
                "Next",
                rx.icon("arrow-right", size=14),
                on_click=S.next_step,
                id="wizard-next",
                disabled=S.problems.length() > 0,
            ),
            rx.hstack(
                rx.button(
                    rx.icon("calendar-clock", size=14),
                    "Schedule",
                    variant="soft",
                    on_click=R.open_schedule,
                    id="wizard-schedule",
                    disabled=S.problems.length() > 0,
                ),
                rx.button(
                    rx.icon("send", size=14),
                    "Send",
                    on_click=R.open_send,
                    id="wizard-send",
                    disabled=S.problems.length() > 0,
                ),
                spacing="3",
            ),
        ),
        width="100%",
        align="center",
    )


def wizard_page() -> rx.Component:
    left = rx.vstack(
        rx.match(S.step, (2, design_step()), (3, review_step()), setup_step()),
        rx.cond(
            S.error != "",
            rx.callout(S.error, icon="triangle-alert", color_scheme="red", size="1", width="100%", id="wizard-error"),
        ),
        rx.divider(),
        _problems(),
        _buttons(),
        width="100%",
        spacing="4",
        flex="3",
        min_width="0",
    )
    right = rx.box(
        rx.cond(S.step == 1, audience_card(), preview_card()),
        flex="2",
        min_width="300px",
        position="sticky",
        top="24px",
    )
    body = rx.cond(
        S.loaded,
        rx.vstack(
            _stepper(),
            rx.hstack(left, right, width="100%", align="start", spacing="6"),
            send_dialog(),
            schedule_dialog(),
            width="100%",
            spacing="5",
        ),
        rx.center(rx.spinner(), padding="48px", width="100%"),
    )
    return page_shell(
        rx.cond(S.name != "", S.name, "New campaign"),
        body,
        actions=rx.link(rx.button("Back to All Campaigns", variant="ghost"), href=routes.CAMPAIGNS, id="wizard-back"),
        subtitle="Social Messaging · WhatsApp",
    )
