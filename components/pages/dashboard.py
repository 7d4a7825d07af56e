"""The home dashboard (SPEC S19): the last 7/30/90 days at a glance, the page users land on after signing in."""

from __future__ import annotations

import reflex as rx

from components import routes
from components.common import status_badge
from components.layout import page_shell
from state.dashboard import DashboardState as S

WINDOW_CHOICES = [("7", "7 days"), ("30", "30 days"), ("90", "90 days")]


def _window_picker() -> rx.Component:
    # A radio group (segmented control): each choice is named by its visible text, the group by "Period".
    return rx.segmented_control.root(
        *[rx.segmented_control.item(label, value=value) for value, label in WINDOW_CHOICES],
        value=S.days,
        on_change=S.set_window,
        aria_label="Period",
        id="dashboard-window",
    )


def _card(label: str, value: rx.Var, note: rx.Component | str, key: str, icon: str) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.icon(icon, size=16, color=rx.color("accent", 11)),
                rx.text(label, size="2", color=rx.color("gray", 11), id=f"stat-{key}-label"),
                spacing="2",
                align="center",
            ),
            rx.heading(value, size="7", weight="bold", id=f"stat-{key}"),
            rx.text(note, size="1", color=rx.color("gray", 10)),
            spacing="1",
        ),
        role="group",
        aria_labelledby=f"stat-{key}-label",
        flex="1",
        min_width="160px",
    )


def _cards() -> rx.Component:
    t = S.totals
    return rx.flex(
        _card("Messages sent", t["sent"], "accepted by WhatsApp", "sent", "send"),
        _card(
            "Delivery rate", t["delivery_rate"], rx.text(t["delivered"], " delivered"), "delivery-rate", "check-check"
        ),
        _card("Read rate", t["read_rate"], rx.text(t["read"], " read, of delivered"), "read-rate", "eye"),
        _card("Replies", t["replies"], "messages contacts sent you", "replies", "message-circle-reply"),
        _card("Opt-outs", t["opt_outs"], "unsubscribed from WhatsApp", "opt-outs", "user-x"),
        _card("Failed", t["failed"], "not delivered, with a reason", "failed", "circle-alert"),
        spacing="3",
        wrap="wrap",
        width="100%",
    )


def _chart() -> rx.Component:
    # Bars for what was sent each day, lines for what became of those messages (straight segments: a
    # smoothed curve would draw values between days that never existed).
    lines = [
        ("delivered", "Delivered", rx.color("grass", 9)),
        ("read", "Read", rx.color("violet", 9)),
        ("failed", "Failed", rx.color("red", 9)),
    ]
    chart = rx.recharts.composed_chart(
        rx.recharts.cartesian_grid(stroke_dasharray="3 3", vertical=False),
        rx.recharts.x_axis(data_key="label", min_tick_gap=16),
        rx.recharts.y_axis(allow_decimals=False),
        rx.recharts.graphing_tooltip(),
        rx.recharts.legend(),
        rx.recharts.bar(data_key="sent", name="Sent", fill=rx.color("blue", 7), is_animation_active=False),
        *[
            rx.recharts.line(
                data_key=key,
                name=label,
                stroke=color,
                stroke_width=2,
                dot=False,
                type_="linear",
                is_animation_active=False,
            )
            for key, label, color in lines
        ],
        data=S.rows,
        width="100%",
        height=280,
    )
    return rx.card(
        rx.vstack(
            rx.heading("Messages per day", size="3", weight="medium", as_="h2", id="per-day-heading"),
            rx.text(
                "By the day each message was sent; delivered and read count what happened to it since.",
                size="1",
                color=rx.color("gray", 10),
            ),
            rx.box(chart, width="100%", role="img", aria_labelledby="per-day-heading", id="per-day-chart"),
            spacing="2",
            width="100%",
        ),
        width="100%",
    )


def _channel(row: rx.Var) -> rx.Component:
    def fact(label: str, value: rx.Var, key: str) -> rx.Component:
        return rx.hstack(
            rx.text(label, size="2", color=rx.color("gray", 10), min_width="120px"),
            rx.text(value, size="2", weight="medium", id=f"channel-{key}-" + row["id"]),
            spacing="2",
        )

    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.icon("radio-tower", size=16),
                rx.text(row["name"], weight="medium"),
                status_badge(row["status"]),
                spacing="2",
                align="center",
            ),
            rx.text(row["kind"], " · ", row["phone"], " · ", row["rate"], size="1", color=rx.color("gray", 10)),
            fact("Messaging limit", row["tier"], "tier"),
            fact("Quality", row["quality"], "quality"),
            rx.cond(row["notice"] != "", rx.text(row["notice"], size="1", color=rx.color("amber", 11))),
            spacing="2",
        ),
        flex="1",
        min_width="260px",
    )


def _channels() -> rx.Component:
    return rx.vstack(
        rx.heading("Channels", size="3", weight="medium", as_="h2"),
        rx.cond(
            S.channels.length() > 0,
            rx.flex(rx.foreach(S.channels, _channel), spacing="3", wrap="wrap", width="100%"),
            rx.text("No channel is connected yet.", size="2", color=rx.color("gray", 10)),
        ),
        spacing="2",
        width="100%",
    )


def _attention_row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(
            rx.link(row["name"], href=routes.CAMPAIGNS + "/" + row["id"], weight="medium", underline="hover")
        ),
        rx.table.cell(status_badge(row["status"], row["status_label"])),
        rx.table.cell(rx.text(row["reason"], size="2")),
        rx.table.cell(rx.text(row["when"], size="2", color=rx.color("gray", 10))),
        id="attention-row-" + row["id"],
    )


def _attention() -> rx.Component:
    # A region named by its heading, so a person (or a screen reader's landmarks) finds it by that name.
    return rx.el.section(
        rx.heading("Campaigns needing attention", size="3", weight="medium", as_="h2", id="attention-heading"),
        rx.cond(
            S.attention.length() > 0,
            rx.table.root(
                rx.table.header(
                    rx.table.row(
                        *[rx.table.column_header_cell(h) for h in ("Campaign", "Status", "Why", "Last change")]
                    )
                ),
                rx.table.body(rx.foreach(S.attention, _attention_row)),
                variant="surface",
                size="2",
                width="100%",
                id="attention-table",
            ),
            rx.callout(
                "Nothing needs you: no campaign is paused or failing.",
                icon="circle-check",
                color_scheme="grass",
                size="1",
                id="attention-none",
            ),
        ),
        aria_labelledby="attention-heading",
        style={"width": "100%", "display": "flex", "flex_direction": "column", "gap": "var(--space-2)"},
    )


def dashboard_page() -> rx.Component:
    return page_shell(
        "Dashboard",
        rx.cond(
            S.loaded,
            rx.vstack(
                rx.hstack(
                    _window_picker(),
                    rx.text(S.period, " (UTC)", size="2", color=rx.color("gray", 10), id="dashboard-period"),
                    spacing="3",
                    align="center",
                ),
                _cards(),
                _chart(),
                _attention(),
                _channels(),
                spacing="5",
                width="100%",
            ),
            rx.center(rx.spinner(), padding="48px", width="100%"),
        ),
        subtitle="The last days of messaging at a glance",
    )
