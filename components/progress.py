"""Campaign progress at a glance: a thin bar and the funnel counts (sent / delivered / read / failed)."""

from __future__ import annotations

import reflex as rx


def progress_bar(percent: rx.Var, bar_id: str | rx.Var = "") -> rx.Component:
    """`percent` is 0..100 (a number or its text); the share of recipients no longer waiting to be sent."""
    return rx.box(
        rx.box(
            height="100%",
            width=percent.to(str) + "%",
            background=rx.color("accent", 9),
            border_radius="inherit",
            transition="width 0.4s ease",
        ),
        height="6px",
        width="100%",
        min_width="96px",
        background=rx.color("gray", 4),
        border_radius="999px",
        overflow="hidden",
        role="progressbar",
        aria_valuenow=percent,
        aria_valuemin=0,
        aria_valuemax=100,
        aria_label="Sending progress",
        aria_valuetext=percent.to(str) + "% sent",
        id=bar_id,
    )


def _count(icon: str, value: rx.Var, label: str, color: str, count_id: str | rx.Var) -> rx.Component:
    return rx.tooltip(
        rx.hstack(
            rx.icon(icon, size=12, color=rx.color(color, 10)),
            # The icon and its tooltip tell sighted mouse users what the number counts; a screen reader reads this.
            rx.el.span(label + ": ", class_name="visually-hidden"),
            rx.text(value, size="1", id=count_id),
            spacing="1",
            align="center",
        ),
        content=label,
    )


def funnel_counts(row: rx.Var, prefix: rx.Var) -> rx.Component:
    """Sent / delivered / read / failed of one row; ids like `<prefix>-sent` for tests."""
    return rx.hstack(
        _count("send", row["sent"], "Sent", "gray", prefix + "-sent"),
        _count("check-check", row["delivered"], "Delivered", "blue", prefix + "-delivered"),
        _count("eye", row["read"], "Read", "grass", prefix + "-read"),
        _count("circle-x", row["failed"], "Failed", "red", prefix + "-failed"),
        spacing="3",
        align="center",
    )


def campaign_progress(row: rx.Var, prefix: rx.Var) -> rx.Component:
    return rx.vstack(
        progress_bar(row["progress"], prefix + "-bar"),
        funnel_counts(row, prefix),
        spacing="1",
        width="100%",
        min_width="180px",
    )
