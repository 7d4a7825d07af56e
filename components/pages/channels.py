"""The Channels page."""

import reflex as rx

from components.common import empty_state, overview_page, status_badge
from state.base import AppState
from state.channels import ChannelsState


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
    return overview_page(
        "Channels", "WhatsApp Business numbers Hubcast sends from", ChannelsState,
        ["Name", "Type", "Number", "Status", "Rate limit", "Access token"], _channel_row, "channels-table",
        empty_state("radio-tower", "No channel connected",
                    rx.cond(AppState.is_admin, "Connect a WhatsApp Business number, or use the built-in Sandbox.",
                            "Ask an admin to connect a WhatsApp Business number."),
                    state_id="channels-empty"),
    )
