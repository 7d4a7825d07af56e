"""Wizard step 3, "Review and send": every detail with "Edit", then "Send" or "Schedule" (SPEC S11)."""

from __future__ import annotations

import reflex as rx

from app.domain.time_zones import TIMEZONES
from components.common import field_label
from state.wizard import WizardState as W
from state.wizard_design import WizardDesignState as D
from state.wizard_review import WizardReviewState as S


def _part(title: str, body: rx.Component, step: int, part_id: str) -> rx.Component:
    return rx.card(
        rx.hstack(
            rx.vstack(
                rx.text(title, size="1", color=rx.color("gray", 10), weight="medium"), body, spacing="1", flex="1"
            ),
            rx.button(
                rx.icon("pencil", size=14),
                "Edit",
                variant="ghost",
                size="1",
                on_click=W.edit_step(step),
                id=f"wizard-edit-{part_id}",
            ),
            width="100%",
            align="start",
        ),
        width="100%",
        id=f"wizard-review-{part_id}",
    )


def review_step() -> rx.Component:
    return rx.vstack(
        _part("Name", rx.text(S.review["name"], weight="medium"), 1, "name"),
        _part(
            "Audience",
            rx.vstack(
                rx.text(S.review["audience"], weight="medium"),
                rx.text(
                    "Estimated reach: ",
                    S.review["reach"],
                    " WhatsApp number(s)",
                    size="2",
                    color=rx.color("gray", 11),
                    id="wizard-review-reach",
                ),
                # Meta's daily messaging limit and the frequency cap, counted before sending (issue 12)
                rx.cond(
                    S.review["quota_note"],
                    rx.text(S.review["quota_note"], size="2", color=rx.color("gray", 11), id="wizard-review-quota"),
                ),
                rx.cond(
                    S.review["quota_wait"],
                    rx.callout(
                        S.review["quota_wait"],
                        icon="hourglass",
                        size="1",
                        color_scheme="amber",
                        id="wizard-review-quota-wait",
                    ),
                ),
                rx.cond(
                    S.review["cap_note"],
                    rx.text(
                        S.review["cap_note"], size="2", color=rx.color("amber", 11), id="wizard-review-frequency-cap"
                    ),
                ),
                spacing="1",
            ),
            1,
            "audience",
        ),
        _part("Channel", rx.text(S.review["channel"], weight="medium"), 1, "channel"),
        _part(
            "Message",
            rx.vstack(
                rx.text(S.review["template"], weight="medium"),
                rx.foreach(
                    S.mapping_rows,
                    lambda m: rx.text(
                        rx.code(m["label"]),
                        " ← ",
                        m["source"],
                        rx.cond(m["fallback"] != "", rx.text.span(" (fallback: ", m["fallback"], ")")),
                        size="2",
                        color=rx.color("gray", 11),
                    ),
                ),
                rx.cond(
                    D.skipped > 0,
                    rx.text(
                        D.skipped,
                        " recipient(s) will be skipped (empty value, no fallback).",
                        size="2",
                        color=rx.color("amber", 11),
                    ),
                ),
                spacing="1",
            ),
            2,
            "message",
        ),
        width="100%",
        spacing="3",
    )


def send_dialog() -> rx.Component:
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title("Send this campaign now?"),
            rx.alert_dialog.description(
                rx.text(
                    "“",
                    W.name,
                    "” will be sent to about ",
                    rx.text.span(S.review["reach"], weight="bold", id="wizard-send-reach"),
                    " WhatsApp number(s). This cannot be undone; you can pause it while it sends.",
                ),
                size="2",
            ),
            rx.hstack(
                rx.button(
                    "Cancel", variant="soft", color_scheme="gray", on_click=S.close_dialogs, id="wizard-send-cancel"
                ),
                rx.button(
                    rx.cond(S.busy, rx.spinner(size="1"), rx.icon("send", size=14)),
                    "Send",
                    loading=S.busy,
                    on_click=S.confirm_send,
                    id="wizard-send-confirm",
                ),
                justify="end",
                spacing="3",
                margin_top="16px",
            ),
        ),
        open=S.send_open,
        on_open_change=S.close_dialogs,  # Escape (or a click outside) closes it
    )


def schedule_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Schedule the campaign"),
            rx.vstack(
                field_label("Time zone", "wizard-schedule-tz"),
                rx.select(
                    TIMEZONES,
                    value=W.timezone,
                    on_change=S.set_timezone,
                    id="wizard-schedule-tz",
                    width="100%",
                    custom_attrs={"aria-labelledby": "wizard-schedule-tz-label"},  # on the trigger
                ),
                rx.hstack(
                    rx.vstack(
                        field_label("Date", "wizard-schedule-date"),
                        rx.input(
                            type="date", value=S.schedule_date, on_change=S.set_schedule_date, id="wizard-schedule-date"
                        ),
                        spacing="1",
                    ),
                    rx.vstack(
                        field_label("Time", "wizard-schedule-time"),
                        rx.input(
                            type="time", value=S.schedule_time, on_change=S.set_schedule_time, id="wizard-schedule-time"
                        ),
                        spacing="1",
                    ),
                    spacing="3",
                ),
                rx.text("Now in ", W.timezone, ": ", W.local_now, size="1", color=rx.color("gray", 10)),
                rx.cond(
                    S.schedule_note != "",
                    rx.text("Sends at ", S.schedule_note, size="2", weight="medium", id="wizard-schedule-utc"),
                ),
                rx.callout(
                    "All contacts receive the message at the same moment, whatever their own time zone.",
                    icon="clock",
                    size="1",
                    color_scheme="blue",
                    width="100%",
                ),
                width="100%",
                spacing="2",
            ),
            rx.hstack(
                rx.button(
                    "Cancel", variant="soft", color_scheme="gray", on_click=S.close_dialogs, id="wizard-schedule-cancel"
                ),
                rx.button(
                    rx.icon("calendar-clock", size=14),
                    "Schedule",
                    on_click=S.confirm_schedule,
                    id="wizard-schedule-confirm",
                ),
                justify="end",
                spacing="3",
                margin_top="16px",
            ),
            max_width="480px",
        ),
        open=S.schedule_open,
        on_open_change=S.close_dialogs,  # Escape (or a click outside) closes it
    )
