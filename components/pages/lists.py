"""The Lists page."""

import reflex as rx

from components.common import empty_state, overview_page
from state.lists import ListsState


def _list_row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(rx.text(row["name"], weight="medium")),
        rx.table.cell(row["members"]),
        rx.table.cell(rx.badge(row["source"], variant="soft")),
        rx.table.cell(row["description"]),
        rx.table.cell(row["created"]),
    )


def lists_page() -> rx.Component:
    return overview_page(
        "Lists", "Static sets of contacts", ListsState, ["Name", "Members", "Source", "Description", "Created"],
        _list_row, "lists-table",
        empty_state("list", "No contact lists yet",
                    "A list is a fixed set of contacts, made by hand, by import, or by an integration.",
                    state_id="lists-empty"),
    )
