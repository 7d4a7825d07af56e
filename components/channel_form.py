"""The connect / edit dialog for a WhatsApp Cloud API number.

Inputs are uncontrolled (initial values only), so what the admin types stays in the browser until
submitted; secret inputs always start empty and say whether a value is stored ("set: leave empty to
keep it").
"""

from __future__ import annotations

import reflex as rx

from components.common import field_label
from state.channels import ChannelsState


def _label(text: str, control_id: str, hint: str = "") -> rx.Component:
    return rx.vstack(
        field_label(text, control_id),
        rx.cond(hint != "", rx.text(hint, size="1", color=rx.color("gray", 10), id=control_id + "-hint")),
        spacing="0",
    )


def _field(
    label: str,
    name: str,
    *,
    hint: str = "",
    placeholder: str = "",
    input_type: str = "text",
    required: bool = False,
    width: str = "100%",
    max_length: int | None = None,
) -> rx.Component:
    control_id = f"channel-{name.replace('_', '-')}"
    return rx.vstack(
        _label(label, control_id, hint),
        rx.input(
            name=name,
            id=control_id,
            aria_describedby=control_id + "-hint" if hint else None,
            type=input_type,
            placeholder=placeholder,
            default_value=ChannelsState.form_values.get(name, ""),
            required=required,
            max_length=max_length,
            width="100%",
        ),
        spacing="1",
        width=width,
    )


def _secret(label: str, name: str, hint: str, required_hint: str) -> rx.Component:
    is_set = ChannelsState.form_values.get(f"{name}_set", "") == "yes"
    editing = ChannelsState.form_mode == "edit"
    control_id = f"channel-{name.replace('_', '-')}"
    return rx.vstack(
        rx.hstack(
            field_label(label, control_id),
            rx.cond(
                editing,
                rx.cond(
                    is_set,
                    rx.badge("set", color_scheme="green", variant="soft", size="1"),
                    rx.badge("not set", color_scheme="red", variant="soft", size="1"),
                ),
            ),
            spacing="2",
            align="center",
        ),
        rx.text(hint, size="1", color=rx.color("gray", 10), id=control_id + "-hint"),
        rx.input(
            name=name,
            id=control_id,
            aria_describedby=control_id + "-hint",
            type="password",
            autocomplete="new-password",
            placeholder=rx.cond(editing & is_set, "Replace (leave empty to keep the stored value)", required_hint),
            width="100%",
        ),
        spacing="1",
        width="100%",
    )


def channel_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(rx.cond(ChannelsState.form_mode == "edit", "Edit channel", "Connect a WhatsApp number")),
            rx.dialog.description(
                "From Meta's App Dashboard: WhatsApp > API setup (ids and token) and App settings > Basic "
                "(app secret). Secrets are stored encrypted and never shown again; changing the API base URL "
                "needs the access token typed again.",
                size="2",
                color=rx.color("gray", 10),
                margin_bottom="12px",
            ),
            rx.form(
                rx.vstack(
                    _field("Name", "name", placeholder="Main shop number", required=True),
                    _field(
                        "Display name",
                        "display_name",
                        hint="The sender name message previews show. Empty: Meta's verified name, from the next test.",
                        placeholder="Corner Bakery",
                        max_length=120,
                    ),
                    rx.hstack(
                        _field(
                            "Phone number ID",
                            "phone_number_id",
                            placeholder="106540352242922",
                            required=True,
                            width="50%",
                        ),
                        _field(
                            "WhatsApp Business Account ID",
                            "business_account_id",
                            placeholder="102290129340398",
                            required=True,
                            width="50%",
                        ),
                        width="100%",
                        spacing="3",
                    ),
                    _secret("Access token", "access_token", "A permanent System User token.", "EAAG... (required)"),
                    _secret(
                        "App secret", "app_secret", "Used to check that webhooks really come from Meta.", "(required)"
                    ),
                    _secret(
                        "Verify token",
                        "verify_token",
                        "Meta sends it when you register the webhook URL.",
                        "Leave empty to generate one",
                    ),
                    rx.hstack(
                        _field("API base URL", "api_base_url", placeholder="https://graph.facebook.com", width="50%"),
                        _field("API version", "api_version", placeholder="v23.0", width="25%"),
                        _field(
                            "Messages / second",
                            "messages_per_second",
                            placeholder="80",
                            input_type="number",
                            width="25%",
                        ),
                        width="100%",
                        spacing="3",
                    ),
                    rx.cond(
                        ChannelsState.form_error != "",
                        rx.callout(
                            ChannelsState.form_error,
                            icon="triangle-alert",
                            color_scheme="red",
                            size="1",
                            id="channel-form-error",
                            width="100%",
                        ),
                    ),
                    rx.hstack(
                        rx.button(
                            "Cancel",
                            variant="soft",
                            color_scheme="gray",
                            type="button",
                            on_click=ChannelsState.close_form,
                            id="channel-form-cancel",
                        ),
                        rx.button(
                            rx.cond(ChannelsState.form_mode == "edit", "Save and test", "Connect and test"),
                            type="submit",
                            loading=ChannelsState.saving,
                            id="channel-form-submit",
                        ),
                        justify="end",
                        width="100%",
                    ),
                    spacing="3",
                    width="100%",
                ),
                on_submit=ChannelsState.save_channel,
                width="100%",
            ),
            max_width="640px",
            id="channel-dialog",
        ),
        open=ChannelsState.form_open,
        on_open_change=ChannelsState.form_open_changed,
    )
