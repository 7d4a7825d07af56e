"""Tables, empty states, badges, pagers: the pieces every page shares."""

from __future__ import annotations

import reflex as rx

from app.settings import MAX_CSV_BYTES

# The CSV size limit, told to the browser as a hint (rx.upload's max_size); the server checks it itself.
CSV_BROWSER_MAX_BYTES = MAX_CSV_BYTES
CSV_LIMIT_TEXT = f"at most {MAX_CSV_BYTES // (1024 * 1024)} MB"


def field_label(text, control_id, *, size: str = "2", **props) -> rx.Component:
    """A visible label tied to its control (SPEC S20): `for` names the control's id, so the label is the
    control's accessible name (what a screen reader says, what Playwright's get_by_label finds) and clicking it
    focuses the control. Its own id, `<control id>-label`, lets a Radix select trigger (a button) name itself
    with aria-labelledby. `control_id` may be a Var (rows rendered by rx.foreach)."""
    return rx.text(
        text,
        as_="label",
        size=size,
        weight=props.pop("weight", "medium"),
        id=control_id + "-label",
        custom_attrs={"htmlFor": control_id},
        **props,
    )


def status_filter(control_id: str, options, value, on_change, *, aria_label: str = "Status") -> rx.Component:
    """A "Status" select with its visible label: `options` are (value, label) pairs, "all" standing for no
    filter (an empty `value`)."""
    return rx.hstack(
        field_label("Status", control_id),
        rx.select.root(
            rx.select.trigger(id=control_id, aria_label=aria_label),
            rx.select.content(*[rx.select.item(label, value=v) for v, label in options]),
            value=rx.cond(value == "", "all", value),
            on_change=on_change,
        ),
        spacing="2",
        align="center",
    )


def labelled_radio(value: str, label, item_id: str) -> rx.Component:
    """A radio with its text inside one <label>: clicking the text selects it, and the text is its name."""
    # aria-labelledby too: axe (and some screen readers) do not take a wrapping <label> as a button's name, and a
    # Radix radio is a <button role="radio">.
    return rx.text(
        rx.flex(
            rx.radio_group.item(value=value, id=item_id, aria_labelledby=item_id + "-text"),
            rx.text.span(label, id=item_id + "-text"),
            as_="span",
            spacing="2",
            align="center",
        ),
        as_="label",
        size="2",
        cursor="pointer",
    )


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


def status_badge(status: rx.Var, label: rx.Var | str | None = None) -> rx.Component:
    """A coloured badge for a status code; `label` is the name users know (campaigns: "Draft", "Sent" ...)."""
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
    return rx.badge(status if label is None else label, color_scheme=color, variant="soft", radius="full")


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
        aria_label=placeholder,  # the placeholder is all a person sees; it names the box once text is typed too
        id=box_id,
        width="320px",
        debounce_timeout=300,
    )
