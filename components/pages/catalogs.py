"""Lists, Segments, Templates and Channels overview pages."""

import reflex as rx

from components.common import data_table, empty_state, status_badge
from components.layout import page_shell
from state.base import AppState
from state.catalogs import ChannelsState, ListsState, SegmentsState, TemplatesState


def _overview_page(title: str, subtitle: str, state, headers: list[str], render_row, table_id: str,
                   empty: rx.Component) -> rx.Component:
    """A read-only table of `state.rows`, its empty state, and a spinner until `state.load` answered."""
    return page_shell(
        title,
        rx.cond(
            state.loaded,
            rx.cond(state.rows.length() > 0, data_table(headers, state.rows, render_row, table_id), empty),
            rx.center(rx.spinner(), padding="48px", width="100%"),
        ),
        subtitle=subtitle,
    )


def _list_row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(rx.text(row["name"], weight="medium")),
        rx.table.cell(row["members"]),
        rx.table.cell(rx.badge(row["source"], variant="soft")),
        rx.table.cell(row["description"]),
        rx.table.cell(row["created"]),
    )


def lists_page() -> rx.Component:
    return _overview_page(
        "Lists", "Static sets of contacts", ListsState, ["Name", "Members", "Source", "Description", "Created"],
        _list_row, "lists-table",
        empty_state("list", "No contact lists yet",
                    "A list is a fixed set of contacts, made by hand, by import, or by an integration.",
                    state_id="lists-empty"),
    )


def _segment_row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(rx.text(row["name"], weight="medium")),
        rx.table.cell(rx.code(row["rules"])),
        rx.table.cell(rx.badge("match ", row["match"], variant="soft")),
        rx.table.cell(row["updated"]),
    )


def segments_page() -> rx.Component:
    return _overview_page(
        "Segments", "Dynamic groups defined by rules on contact fields", SegmentsState,
        ["Name", "Rules", "Match", "Updated"], _segment_row, "segments-table",
        empty_state("filter", "No segments yet",
                    "A segment is a dynamic group defined by rules, like country = Australia. "
                    "Contacts added later that match are included automatically.", state_id="segments-empty"),
    )


def _template_row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(rx.text(row["name"], weight="medium")),
        rx.table.cell(row["language"]),
        rx.table.cell(row["category"]),
        rx.table.cell(status_badge(row["status"])),
        rx.table.cell(row["channel"]),
    )


def templates_page() -> rx.Component:
    return _overview_page(
        "Templates", "WhatsApp message templates; only approved ones can be sent", TemplatesState,
        ["Name", "Language", "Category", "Status", "Channel"], _template_row, "templates-table",
        empty_state("layout-template", "No templates yet",
                    "WhatsApp template messages appear here once a channel is connected. "
                    "Only approved templates can be sent.", state_id="templates-empty"),
    )


def _channel_row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(rx.text(row["name"], weight="medium")),
        rx.table.cell(row["kind"]),
        rx.table.cell(row["phone"]),
        rx.table.cell(status_badge(row["status"])),
        rx.table.cell(row["mps"], " msg/s"),
        rx.table.cell(rx.cond(row["token_set"] == "yes", rx.badge("set", color_scheme="green", variant="soft"),
                              rx.badge("missing", color_scheme="red", variant="soft"))),
    )


def channels_page() -> rx.Component:
    return _overview_page(
        "Channels", "WhatsApp Business numbers Hubcast sends from", ChannelsState,
        ["Name", "Type", "Number", "Status", "Rate limit", "Access token"], _channel_row, "channels-table",
        empty_state("radio-tower", "No channel connected",
                    rx.cond(AppState.is_admin, "Connect a WhatsApp Business number, or use the built-in Sandbox.",
                            "Ask an admin to connect a WhatsApp Business number."),
                    state_id="channels-empty"),
    )
