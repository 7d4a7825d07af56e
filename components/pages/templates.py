"""The Templates page."""

import reflex as rx

from components.common import empty_state, overview_page, status_badge
from state.templates import TemplatesState


def _template_row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(rx.text(row["name"], weight="medium")),
        rx.table.cell(row["language"]),
        rx.table.cell(row["category"]),
        rx.table.cell(status_badge(row["status"])),
        rx.table.cell(row["channel"]),
    )


def templates_page() -> rx.Component:
    return overview_page(
        "Templates", "WhatsApp message templates; only approved ones can be sent", TemplatesState,
        ["Name", "Language", "Category", "Status", "Channel"], _template_row, "templates-table",
        empty_state("layout-template", "No templates yet",
                    "WhatsApp template messages appear here once a channel is connected. "
                    "Only approved templates can be sent.", state_id="templates-empty"),
    )
