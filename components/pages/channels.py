"""The Channels page (SPEC S4): the numbers Hubcast sends from; admins connect, edit, test, disconnect."""

import reflex as rx

from components.channel_form import channel_dialog
from components.common import data_table, empty_state, field_label, status_badge
from components.layout import page_shell
from state.base import AppState
from state.channels import VERIFY_TOKEN_INPUT, ChannelsState


def _name_cell(row: rx.Var) -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.text(row["name"], weight="medium"),
            rx.cond(
                row["sandbox"] == "yes",
                rx.tooltip(
                    rx.badge(
                        rx.icon("flask-conical", size=12),
                        "Simulator",
                        color_scheme="violet",
                        variant="soft",
                        size="1",
                        class_name="simulator-badge",
                    ),
                    content="A local WhatsApp Cloud API simulator: nothing reaches real phones.",
                ),
            ),
            spacing="2",
            align="center",
        ),
        rx.text(
            rx.cond(row["sandbox"] == "yes", "Local Cloud API simulator", row["kind"]),
            size="1",
            color=rx.color("gray", 10),
        ),
        spacing="0",
    )


def _status_cell(row: rx.Var) -> rx.Component:
    return rx.vstack(
        status_badge(row["status"]),
        rx.cond(
            (row["last_error"] != "") & (row["status"] != "connected"),
            rx.text(
                row["last_error"],
                size="1",
                max_width="260px",
                class_name="channel-last-error",
                color=rx.cond(row["status"] == "error", rx.color("red", 11), rx.color("gray", 10)),
            ),
        ),
        rx.cond(row["checked"] != "", rx.text("Checked ", row["checked"], size="1", color=rx.color("gray", 10))),
        # What Meta's account webhooks last said: the number's quality and the latest account event.
        rx.cond(
            row["quality"] != "",
            rx.badge(
                "Quality: ",
                row["quality"],
                color_scheme=rx.match(row["quality"], ("GREEN", "green"), ("YELLOW", "amber"), "red"),
                variant="surface",
                size="1",
            ),
        ),
        rx.cond(
            row["account_notice"] != "",
            rx.text(row["account_notice"], size="1", max_width="260px", color=rx.color("amber", 11)),
        ),
        spacing="1",
        align="start",
    )


def _actions(row: rx.Var) -> rx.Component:
    testing = ChannelsState.testing_id == row["id"]
    return rx.hstack(
        rx.button(
            rx.cond(row["status"] == "disconnected", "Reconnect", "Test connection"),
            size="1",
            variant="soft",
            loading=testing,
            disabled=ChannelsState.testing_id != "",
            on_click=ChannelsState.check_connection(row["id"]),
            id="test-channel-" + row["id"],
        ),
        rx.cond(
            row["sandbox"] != "yes",
            rx.hstack(
                rx.button(
                    "Edit",
                    size="1",
                    variant="soft",
                    color_scheme="gray",
                    on_click=ChannelsState.open_edit(row["id"]),
                    id="edit-channel-" + row["id"],
                ),
                rx.cond(
                    row["status"] != "disconnected",
                    rx.button(
                        "Disconnect",
                        size="1",
                        variant="soft",
                        color_scheme="red",
                        on_click=ChannelsState.ask_disconnect(row["id"]),
                        id="disconnect-channel-" + row["id"],
                    ),
                ),
                spacing="2",
            ),
        ),
        spacing="2",
        justify="end",
    )


def _row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(_name_cell(row)),
        rx.table.cell(
            rx.vstack(
                rx.text(rx.cond(row["phone"] != "", row["phone"], "—")),
                rx.text("ID ", row["phone_number_id"], size="1", color=rx.color("gray", 10)),
                spacing="0",
            )
        ),
        rx.table.cell(_status_cell(row)),
        rx.table.cell(row["mps"], " msg/s"),
        rx.table.cell(
            rx.cond(
                row["token_set"] == "yes",
                rx.badge("set", color_scheme="green", variant="soft"),
                rx.badge("missing", color_scheme="red", variant="soft"),
            )
        ),
        rx.cond(AppState.is_admin, rx.table.cell(_actions(row))),
        align="center",
    )


def _copyable(value: rx.Var, field_id: str) -> rx.Component:
    return rx.hstack(
        rx.input(value=value, read_only=True, id=field_id, width="100%", size="2"),
        rx.icon_button(
            rx.icon("copy", size=14),
            variant="soft",
            size="2",
            type="button",
            aria_label="Copy",
            on_click=rx.set_clipboard(value),
        ),
        width="100%",
        spacing="2",
    )


def _webhook_card() -> rx.Component:
    """Where Meta must send webhooks. After a connect it also carries the generated verify token, which
    the server writes into the (always mounted) input once; it is never part of the page's state."""
    show_setup = ChannelsState.setup_channel != ""
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.icon("webhook", size=18, color=rx.color("accent", 11)),
                rx.text(
                    rx.cond(show_setup, "Finish connecting ", "Webhook for Meta"),
                    rx.cond(show_setup, ChannelsState.setup_channel, ""),
                    weight="medium",
                ),
                rx.spacer(),
                rx.cond(
                    show_setup,
                    rx.button(
                        "Done", size="1", variant="soft", on_click=ChannelsState.hide_setup, id="webhook-setup-done"
                    ),
                ),
                align="center",
                width="100%",
            ),
            rx.text(
                "In Meta's App Dashboard, WhatsApp > Configuration: set the callback URL below, the verify "
                'token of the channel, and subscribe to the "messages" field. Delivery statuses and STOP '
                "replies then reach Hubcast. Subscribe also to message_template_status_update, "
                "message_template_quality_update, template_category_update, phone_number_quality_update, "
                "account_update and user_preferences: paused templates pause their campaigns, and marketing "
                "opt-outs unsubscribe.",
                size="2",
                color=rx.color("gray", 11),
            ),
            field_label("Callback URL", "webhook-url", size="1"),
            _copyable(ChannelsState.webhook_url, "webhook-url"),
            rx.box(
                field_label("Verify token (shown only now: copy it into Meta's form)", VERIFY_TOKEN_INPUT, size="1"),
                rx.hstack(
                    rx.input(read_only=True, id=VERIFY_TOKEN_INPUT, width="100%", size="2", default_value=""),
                    rx.icon_button(
                        rx.icon("copy", size=14),
                        variant="soft",
                        size="2",
                        type="button",
                        aria_label="Copy the verify token",
                        on_click=rx.call_script(
                            f"navigator.clipboard.writeText(document.getElementById('{VERIFY_TOKEN_INPUT}').value)"
                        ),
                    ),
                    width="100%",
                    spacing="2",
                ),
                # Hidden, not unmounted: the server's one-off set_value needs the input to exist.
                display=rx.cond(show_setup & ChannelsState.setup_token_generated, "block", "none"),
                width="100%",
            ),
            rx.cond(
                show_setup & ~ChannelsState.setup_token_generated,
                rx.text("Verify token: the one you entered.", size="1", color=rx.color("gray", 10)),
            ),
            spacing="2",
            width="100%",
        ),
        width="100%",
        id="webhook-card",
        border=rx.cond(show_setup, f"1px solid {rx.color('accent', 8)}", "none"),
    )


def _disconnect_dialog() -> rx.Component:
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title("Disconnect ", ChannelsState.confirm_name, "?"),
            rx.alert_dialog.description(
                "Campaigns can no longer be sent through this number until it is reconnected (a successful "
                "connection test). Its settings and templates are kept.",
                size="2",
            ),
            rx.hstack(
                rx.alert_dialog.cancel(
                    rx.button("Cancel", variant="soft", color_scheme="gray", on_click=ChannelsState.cancel_disconnect)
                ),
                rx.alert_dialog.action(
                    rx.button(
                        "Disconnect",
                        color_scheme="red",
                        on_click=ChannelsState.confirm_disconnect,
                        id="confirm-disconnect",
                    )
                ),
                justify="end",
                spacing="3",
                margin_top="16px",
            ),
        ),
        open=ChannelsState.confirm_open,
    )


def channels_page() -> rx.Component:
    headers = ["Name", "Number", "Status", "Rate limit", "Access token"]
    table = rx.cond(
        AppState.is_admin,
        data_table(headers + [""], ChannelsState.rows, _row, "channels-table"),
        data_table(headers, ChannelsState.rows, _row, "channels-table"),
    )
    return page_shell(
        "Channels",
        rx.cond(
            ChannelsState.loaded,
            rx.cond(
                ChannelsState.rows.length() > 0,
                table,
                empty_state(
                    "radio-tower",
                    "No channel connected",
                    rx.cond(
                        AppState.is_admin,
                        "Connect a WhatsApp Business number, or use the built-in Sandbox.",
                        "Ask an admin to connect a WhatsApp Business number.",
                    ),
                    state_id="channels-empty",
                ),
            ),
            rx.center(rx.spinner(), padding="48px", width="100%"),
        ),
        rx.cond(AppState.is_admin, _webhook_card()),
        rx.cond(AppState.is_admin, channel_dialog()),
        rx.cond(AppState.is_admin, _disconnect_dialog()),
        actions=rx.cond(
            AppState.is_admin,
            rx.button(
                rx.icon("plus", size=16),
                "Connect a number",
                on_click=ChannelsState.open_connect,
                id="connect-channel",
                size="3",
            ),
        ),
        subtitle="WhatsApp Business numbers Hubcast sends from; only connected ones can be used",
    )
