"""Lists, Segments, Templates and Channels overview pages."""

import reflex as rx

from components.common import data_table, empty_state, status_badge
from components.layout import page_shell
from state.base import AppState
from state.catalogs import ChannelsState, ListsState, SegmentsState, TemplatesState


def _loaded(flag: rx.Var, content: rx.Component) -> rx.Component:
    return rx.cond(flag, content, rx.center(rx.spinner(), padding="48px", width="100%"))


def _list_row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(rx.text(row["name"], weight="medium")),
        rx.table.cell(row["members"]),
        rx.table.cell(rx.badge(row["source"], variant="soft")),
        rx.table.cell(row["description"]),
        rx.table.cell(row["created"]),
    )


def lists_page() -> rx.Component:
    return page_shell(
        "Lists",
        _loaded(ListsState.loaded, rx.cond(
            ListsState.rows.length() > 0,
            data_table(["Name", "Members", "Source", "Description", "Created"], ListsState.rows, _list_row,
                       "lists-table"),
            empty_state("list", "No contact lists yet",
                        "A list is a fixed set of contacts, made by hand, by import, or by an integration.",
                        state_id="lists-empty"),
        )),
        subtitle="Static sets of contacts",
    )


def _segment_row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(rx.text(row["name"], weight="medium")),
        rx.table.cell(rx.code(row["rules"])),
        rx.table.cell(rx.badge("match ", row["match"], variant="soft")),
        rx.table.cell(row["updated"]),
    )


def segments_page() -> rx.Component:
    return page_shell(
        "Segments",
        _loaded(SegmentsState.loaded, rx.cond(
            SegmentsState.rows.length() > 0,
            data_table(["Name", "Rules", "Match", "Updated"], SegmentsState.rows, _segment_row, "segments-table"),
            empty_state("filter", "No segments yet",
                        "A segment is a dynamic group defined by rules, like country = Australia. "
                        "Contacts added later that match are included automatically.", state_id="segments-empty"),
        )),
        subtitle="Dynamic groups defined by rules on contact fields",
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
    return page_shell(
        "Templates",
        _loaded(TemplatesState.loaded, rx.cond(
            TemplatesState.rows.length() > 0,
            data_table(["Name", "Language", "Category", "Status", "Channel"], TemplatesState.rows, _template_row,
                       "templates-table"),
            empty_state("layout-template", "No templates yet",
                        "WhatsApp template messages appear here once a channel is connected. "
                        "Only approved templates can be sent.", state_id="templates-empty"),
        )),
        subtitle="WhatsApp message templates; only approved ones can be sent",
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
    return page_shell(
        "Channels",
        _loaded(ChannelsState.loaded, rx.cond(
            ChannelsState.rows.length() > 0,
            data_table(["Name", "Type", "Number", "Status", "Rate limit", "Access token"], ChannelsState.rows,
                       _channel_row, "channels-table"),
            empty_state("radio-tower", "No channel connected",
                        rx.cond(AppState.is_admin,
                                "Connect a WhatsApp Business number, or use the built-in Sandbox.",
                                "Ask an admin to connect a WhatsApp Business number."),
                        state_id="channels-empty"),
        )),
        subtitle="WhatsApp Business numbers Hubcast sends from",
    )
