"""The campaign page's insight (issue 15): delivery funnel, timeline, failure reasons, countries, replies and
"Send again to…". Charts are Reflex's own Recharts components fed by CampaignDetailState (numbers from
app/services/campaigns/insight.py and replies.py), live while the campaign sends."""

from __future__ import annotations

import reflex as rx

from components.common import data_table
from state.base import AppState
from state.campaign_detail import CampaignDetailState as S

SERIES = (("sent", "Sent", "#8d8d8d"), ("delivered", "Delivered", "#0090ff"), ("read", "Read", "#30a46c"))
FAILED_COLOR = "#e5484d"
AGAIN_LABELS = {
    "failed": "Failed for a retryable reason",
    "not_read": "Not read after N hours",
    "replied": "Replied",
    "button": "Clicked a button",
}


def _panel(title: str, panel_id: str, *children: rx.Component) -> rx.Component:
    return rx.card(
        rx.vstack(rx.heading(title, size="3", as_="h2"), *children, spacing="3", width="100%"),
        width="100%",
        id=panel_id,
        role="region",
        aria_label=title,
    )


def _muted(text) -> rx.Component:
    return rx.text(text, size="2", color=rx.color("gray", 10))


def funnel_panel() -> rx.Component:
    chart = rx.recharts.bar_chart(
        rx.recharts.cartesian_grid(stroke_dasharray="3 3", vertical=False),
        rx.recharts.x_axis(data_key="stage"),
        rx.recharts.y_axis(allow_decimals=False),
        rx.recharts.graphing_tooltip(),
        rx.recharts.bar(
            rx.recharts.label_list(data_key="of_total", position="top"),
            data_key="value",
            name="Recipients",
            fill="#25d366",
            is_animation_active=False,
        ),
        data=S.funnel,
        height=240,
        width="100%",
        margin={"top": 24, "right": 8, "left": 0, "bottom": 0},
    )
    steps = rx.hstack(
        rx.foreach(
            S.funnel,
            lambda f: rx.vstack(
                rx.text(f["stage"], size="1", color=rx.color("gray", 10)),
                rx.text(f["value"], size="3", weight="bold"),
                rx.text(f["of_step"], " of previous", size="1", color=rx.color("gray", 10)),
                spacing="0",
                flex="1",
                align="center",
                class_name="funnel-step",
            ),
        ),
        width="100%",
        id="funnel-steps",
    )
    return _panel("Delivery funnel", "insight-funnel", rx.box(chart, width="100%"), steps)


def timeline_panel() -> rx.Component:
    # Straight segments between buckets: a count per minute is not a curve, and a smoothed line drew
    # swells between buckets that never happened on short campaigns.
    chart = rx.recharts.line_chart(
        rx.recharts.cartesian_grid(stroke_dasharray="3 3", vertical=False),
        rx.recharts.x_axis(data_key="t", min_tick_gap=24),
        rx.recharts.y_axis(allow_decimals=False),
        rx.recharts.graphing_tooltip(),
        rx.recharts.legend(),
        *[
            rx.recharts.line(
                data_key=key, name=label, stroke=color, dot=False, is_animation_active=False, type_="linear"
            )
            for key, label, color in SERIES
        ],
        rx.recharts.line(
            data_key="failed",
            name="Failed",
            stroke=FAILED_COLOR,
            dot=False,
            is_animation_active=False,
            type_="linear",
        ),
        data=S.timeline,
        height=240,
        width="100%",
    )
    return _panel(
        "Timeline",
        "insight-timeline",
        _muted("Messages per " + S.timeline_unit + " (times in UTC)"),
        rx.cond(
            S.timeline.length() > 0,
            rx.box(chart, width="100%"),
            _muted("Nothing sent yet."),
        ),
    )


def _failure_row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(rx.text(row["code"], font_family="monospace", size="2")),
        rx.table.cell(rx.text(row["title"], size="2")),
        rx.table.cell(rx.text(row["recipients"], " (", row["share"], ")", size="2")),
        rx.table.cell(rx.text(row["hint"], size="2", color=rx.color("gray", 11))),
    )


def failures_panel() -> rx.Component:
    return _panel(
        "Failure reasons",
        "insight-failures",
        rx.cond(
            S.failures.length() > 0,
            data_table(
                ["Code", "Meta's title", "Recipients", "What to do"], S.failures, _failure_row, "failures-table"
            ),
            _muted("No failed messages."),
        ),
    )


def _country_row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(rx.text(row["country"], size="2")),
        rx.table.cell(rx.text(row["recipients"], size="2")),
        rx.table.cell(rx.text(row["delivered_rate"], size="2")),
        rx.table.cell(rx.text(row["read_rate"], size="2")),
        rx.table.cell(rx.text(row["failed"], size="2")),
    )


def countries_panel() -> rx.Component:
    return _panel(
        "Countries",
        "insight-countries",
        rx.cond(
            S.countries.length() > 0,
            data_table(
                ["Country", "Recipients", "Delivered", "Read", "Failed"], S.countries, _country_row, "countries-table"
            ),
            _muted("No recipients yet."),
        ),
    )


def _reply_row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(rx.text(row["number"], font_family="monospace", size="2")),
        rx.table.cell(
            rx.cond(
                row["kind"] == "button",
                rx.badge(rx.icon("mouse-pointer-click", size=12), row["text"], variant="soft", color_scheme="violet"),
                rx.text(row["text"], size="2"),
            )
        ),
        rx.table.cell(rx.text(row["time"], size="2")),
    )


def replies_panel() -> rx.Component:
    buttons = rx.recharts.bar_chart(
        rx.recharts.x_axis(data_key="label"),
        rx.recharts.y_axis(allow_decimals=False),
        rx.recharts.graphing_tooltip(),
        rx.recharts.bar(
            rx.recharts.label_list(data_key="recipients", position="top"),
            data_key="recipients",
            name="Recipients",
            fill="#8e4ec6",
            is_animation_active=False,
        ),
        data=S.buttons,
        height=180,
        width="100%",
        margin={"top": 20, "right": 8, "left": 0, "bottom": 0},
    )
    return _panel(
        "Replies",
        "insight-replies",
        rx.cond(
            S.buttons.length() > 0,
            rx.vstack(
                _muted("Quick-reply buttons pressed (recipients per button)"),
                rx.box(buttons, width="100%"),
                rx.hstack(
                    rx.foreach(
                        S.buttons,
                        lambda b: rx.badge(b["label"], ": ", b["recipients"], variant="soft", color_scheme="violet"),
                    ),
                    wrap="wrap",
                    id="button-counts",
                ),
                width="100%",
            ),
        ),
        rx.cond(
            S.replies.length() > 0,
            rx.vstack(
                data_table(["Number", "Reply", "Received"], S.replies, _reply_row, "replies-table"),
                _replies_pager(),
                width="100%",
            ),
            _muted("No replies yet."),
        ),
    )


def _replies_pager() -> rx.Component:
    """Newest first, paged on the server: "Newer" / "Older" and where the page is ("21–40 of 57")."""
    return rx.hstack(
        rx.text(S.replies_range, size="2", color=rx.color("gray", 10), id="replies-range", aria_live="polite"),
        rx.spacer(),
        rx.button(
            rx.icon("chevron-left", size=14),
            "Newer",
            variant="soft",
            size="1",
            on_click=S.newer_replies,
            disabled=S.replies_page <= 1,
            aria_label="Newer replies",
            id="replies-newer",
        ),
        rx.button(
            "Older",
            rx.icon("chevron-right", size=14),
            variant="soft",
            size="1",
            on_click=S.older_replies,
            disabled=S.replies_page >= S.replies_pages,
            aria_label="Older replies",
            id="replies-older",
        ),
        align="center",
        width="100%",
        id="replies-pager",
    )


def send_again_panel() -> rx.Component:
    return _panel(
        "Send again to…",
        "send-again",
        _muted(
            "A new draft campaign for a frozen copy of these recipients, with the same template. "
            "It opens in the wizard; this campaign is not changed."
        ),
        rx.hstack(
            rx.select.root(
                rx.select.trigger(aria_label="Send again to", id="send-again-kind"),
                rx.select.content(*[rx.select.item(label, value=value) for value, label in AGAIN_LABELS.items()]),
                value=S.again_kind,
                on_change=S.set_again_kind,
            ),
            rx.cond(
                S.again_kind == "not_read",
                rx.input(
                    value=S.again_hours,
                    on_change=S.set_again_hours.debounce(300),
                    type="number",
                    min=1,
                    width="90px",
                    aria_label="Hours after sending",
                    id="send-again-hours",
                ),
            ),
            rx.cond(
                S.again_kind == "button",
                rx.select.root(
                    rx.select.trigger(aria_label="Button", placeholder="No button replies", id="send-again-button"),
                    rx.select.content(
                        rx.foreach(S.buttons, lambda b: rx.select.item(b["label"].to(str), value=b["payload"].to(str)))
                    ),
                    value=S.again_button,
                    on_change=S.set_again_button,
                ),
            ),
            rx.text(S.again_count, size="2", color=rx.color("gray", 11), id="send-again-count"),
            rx.spacer(),
            rx.button(rx.icon("send", size=14), "Create draft", on_click=S.send_again, id="send-again-create"),
            align="center",
            width="100%",
            wrap="wrap",
            spacing="3",
        ),
    )


def campaign_insight() -> rx.Component:
    return rx.vstack(
        rx.grid(
            funnel_panel(), timeline_panel(), columns=rx.breakpoints(initial="1", md="2"), spacing="4", width="100%"
        ),
        failures_panel(),
        rx.grid(
            countries_panel(), replies_panel(), columns=rx.breakpoints(initial="1", md="2"), spacing="4", width="100%"
        ),
        rx.cond(AppState.can_edit_campaigns, send_again_panel()),
        width="100%",
        spacing="4",
        id="campaign-insight",
    )
