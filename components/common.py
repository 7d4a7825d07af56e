"""Tables, empty states, badges, pagers: the pieces every page shares."""

from __future__ import annotations

import reflex as rx

from app.settings import MAX_CSV_BYTES

# The CSV size limit, told to the browser as a hint (rx.upload's max_size); the server checks it itself.
CSV_BROWSER_MAX_BYTES = MAX_CSV_BYTES
CSV_LIMIT_TEXT = f"at most {MAX_CSV_BYTES // (1024 * 1024)} MB"


def empty_state(
    icon: str, title: str, text: str, action: rx.Component | None = None, state_id: str = "empty-state"
) -> rx.Component:
    return rx.center(
        rx.vstack(
            rx.center(
                rx.icon(icon, size=28, color=rx.color("accent", 11)),
                width="56px",
                height="56px",
                border_radius="full",
                background=rx.color("accent", 3),
            ),
            rx.heading(title, size="4", weight="medium"),
            rx.text(text, size="2", color=rx.color("gray", 10), text_align="center", max_width="420px"),
            action or rx.fragment(),
            align="center",
            spacing="3",
        ),
        id=state_id,
        width="100%",
        padding_y="64px",
        border=f"1px dashed {rx.color('gray', 6)}",
        border_radius="var(--radius-4)",
        background=rx.color("gray", 1),
    )


def data_table(headers: list[str], rows: rx.Var, render_row, table_id: str) -> rx.Component:
    return rx.box(
        rx.table.root(
            rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for h in headers])),
            rx.table.body(rx.foreach(rows, render_row)),
            variant="surface",
            size="2",
            width="100%",
            id=table_id,
        ),
        width="100%",
        overflow_x="auto",
    )


def status_badge(status: rx.Var) -> rx.Component:
    color = rx.match(
        status,
        ("draft", "gray"),
        ("scheduled", "blue"),
        ("sending", "amber"),
        ("paused", "orange"),
        ("sent", "green"),
        ("failed", "red"),
        ("cancelled", "gray"),
        ("APPROVED", "green"),
        ("PENDING", "amber"),
        ("REJECTED", "red"),
        ("connected", "green"),
        ("error", "red"),
        "gray",
    )
    return rx.badge(status, color_scheme=color, variant="soft", radius="full")


def pager(page: rx.Var, pages: rx.Var, total: rx.Var, on_prev, on_next, noun: str) -> rx.Component:
    """`noun` is the plural ("campaigns"); one row reads "1 campaign"."""
    singular = noun[:-1] if noun.endswith("s") else noun
    return rx.hstack(
        rx.text(
            total,
            rx.cond((total == 1) | (total == "1"), f" {singular}", f" {noun}"),
            size="2",
            color=rx.color("gray", 10),
        ),
        rx.spacer(),
        rx.text("Page ", page, " of ", pages, size="2", color=rx.color("gray", 10)),
        rx.icon_button(
            rx.icon("chevron-left", size=16),
            variant="soft",
            size="1",
            on_click=on_prev,
            disabled=page <= 1,
            aria_label="Previous page",
        ),
        rx.icon_button(
            rx.icon("chevron-right", size=16),
            variant="soft",
            size="1",
            on_click=on_next,
            disabled=page >= pages,
            aria_label="Next page",
        ),
        align="center",
        width="100%",
    )


def search_box(value: rx.Var, on_change, placeholder: str, box_id: str) -> rx.Component:
    return rx.input(
        rx.input.slot(rx.icon("search", size=14)),
        value=value,
        on_change=on_change,
        placeholder=placeholder,
        id=box_id,
        width="320px",
        debounce_timeout=300,
    )
