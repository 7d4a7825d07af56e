"""The add / edit contact dialog (fields, custom fields, one identity per channel, consent) and "Add to list"."""

from __future__ import annotations

import reflex as rx

from components.common import field_label
from state.contacts import ContactsState

S = ContactsState

_FIELDS = [
    ("first_name", "First name", ""),
    ("last_name", "Last name", ""),
    ("email", "Email", "name@example.com"),
    ("country", "Country", "ISO code, e.g. FR"),
    ("city", "City", ""),
    ("language", "Language", "e.g. en, pt_BR"),
]
_CHANNELS = [
    ("whatsapp", "WhatsApp", "+33 6 12 34 56 78", "message-circle"),
    ("sms", "SMS", "+33 6 12 34 56 78", "smartphone"),
    ("instagram", "Instagram", "Instagram id", "camera"),
    ("messenger", "Messenger", "Messenger PSID", "message-square"),
]


def _labelled(label: str, child: rx.Component, control_id: str) -> rx.Component:
    return rx.vstack(
        field_label(label, control_id, size="1", color=rx.color("gray", 11)), child, spacing="1", width="100%"
    )


def _field(name: str, label: str, placeholder: str) -> rx.Component:
    return _labelled(
        label,
        rx.input(
            name=name,
            default_value=S.form_values[name],
            placeholder=placeholder,
            id=f"contact-{name.replace('_', '-')}",
            width="100%",
        ),
        f"contact-{name.replace('_', '-')}",
    )


def _subscription(channel: str) -> rx.Component:
    state = S.subscriptions[channel]
    return rx.cond(
        state == "",
        rx.text("not added", size="1", color=rx.color("gray", 9), width="190px"),
        rx.hstack(
            rx.cond(
                state == "subscribed",
                rx.badge("Subscribed", color_scheme="green", variant="soft"),
                rx.badge("Unsubscribed", color_scheme="gray", variant="soft"),
            ),
            rx.cond(
                state == "subscribed",
                rx.button(
                    "Unsubscribe",
                    size="1",
                    variant="soft",
                    color_scheme="red",
                    type="button",
                    on_click=S.set_subscription(channel, False),
                    id=f"unsubscribe-{channel}",
                ),
                rx.button(
                    "Subscribe",
                    size="1",
                    variant="soft",
                    type="button",
                    on_click=S.set_subscription(channel, True),
                    id=f"subscribe-{channel}",
                ),
            ),
            spacing="2",
            align="center",
            width="190px",
        ),
    )


def _identity(channel: str, label: str, placeholder: str, icon: str) -> rx.Component:
    return rx.hstack(
        rx.hstack(
            rx.icon(icon, size=14),
            field_label(label, f"contact-identity-{channel}", weight="regular"),
            width="110px",
            align="center",
            spacing="2",
        ),
        rx.input(
            name=f"identity_{channel}",
            default_value=S.form_values[channel],
            placeholder=placeholder,
            id=f"contact-identity-{channel}",
            flex="1",
        ),
        _subscription(channel),
        align="center",
        width="100%",
        spacing="3",
    )


def _custom_row(row: rx.Var) -> rx.Component:
    return rx.hstack(
        rx.input(
            name="custom_key_" + row["rid"],
            default_value=row["key"],
            placeholder="name, e.g. loyalty_tier",
            width="40%",
            class_name="contact-custom-key",
            aria_label="Custom field name",
        ),
        rx.input(
            name="custom_value_" + row["rid"],
            default_value=row["value"],
            placeholder="value",
            flex="1",
            class_name="contact-custom-value",
            aria_label="Custom field value",
        ),
        rx.icon_button(
            rx.icon("x", size=14),
            variant="ghost",
            color_scheme="gray",
            type="button",
            size="1",
            on_click=S.remove_custom_row(row["rid"]),
            aria_label="Remove this custom field",
        ),
        key=row["rid"],
        width="100%",
        align="center",
    )


def contact_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(rx.cond(S.edit_id == "", "Add a contact", "Edit contact")),
            rx.form(
                rx.vstack(
                    rx.grid(*[_field(*f) for f in _FIELDS], columns="2", spacing="3", width="100%"),
                    rx.divider(),
                    rx.text("Channels", weight="medium", size="2"),
                    rx.text(
                        "WhatsApp and SMS numbers need their country code. Subscription changes apply at once "
                        "and are recorded in the audit log.",
                        size="1",
                        color=rx.color("gray", 10),
                    ),
                    *[_identity(*c) for c in _CHANNELS],
                    rx.divider(),
                    rx.hstack(
                        rx.text("Custom fields", weight="medium", size="2"),
                        rx.spacer(),
                        rx.button(
                            rx.icon("plus", size=14),
                            "Add field",
                            size="1",
                            variant="soft",
                            type="button",
                            on_click=S.add_custom_row,
                            id="contact-add-custom",
                        ),
                        width="100%",
                        align="center",
                    ),
                    rx.vstack(rx.foreach(S.custom_rows, _custom_row), width="100%", spacing="2"),
                    rx.cond(
                        S.form_error != "",
                        rx.callout(
                            S.form_error,
                            icon="triangle-alert",
                            color_scheme="red",
                            size="1",
                            id="contact-form-error",
                            width="100%",
                        ),
                    ),
                    rx.hstack(
                        rx.button(
                            "Cancel",
                            variant="soft",
                            color_scheme="gray",
                            type="button",
                            on_click=S.close_contact_dialog,
                        ),
                        rx.button(rx.cond(S.edit_id == "", "Add contact", "Save"), type="submit", id="contact-save"),
                        justify="end",
                        width="100%",
                    ),
                    spacing="3",
                    width="100%",
                ),
                on_submit=S.save_contact,
                key=S.form_key,
                width="100%",
            ),
            max_width="680px",
        ),
        open=S.dialog_open,
        on_open_change=S.close_contact_dialog,  # Escape (or a click outside) closes it
    )


def add_to_list_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Add to list"),
            rx.dialog.description(
                S.selected_ids.length(),
                " selected contact(s) will be added; contacts already in the list stay as they are.",
                size="2",
            ),
            rx.form(
                rx.vstack(
                    _labelled(
                        "Existing list",
                        rx.select.root(
                            rx.select.trigger(
                                placeholder="Choose a list",
                                width="100%",
                                id="add-to-list-select",
                                aria_labelledby="add-to-list-select-label",
                            ),
                            rx.select.content(
                                rx.foreach(S.list_options, lambda o: rx.select.item(o["name"], value=o["id"]))
                            ),
                            name="list_id",
                        ),
                        "add-to-list-select",
                    ),
                    _labelled(
                        "…or a new list",
                        rx.input(
                            name="new_list_name", placeholder="New list name", id="add-to-list-new-name", width="100%"
                        ),
                        "add-to-list-new-name",
                    ),
                    rx.cond(
                        S.add_error != "",
                        rx.callout(
                            S.add_error,
                            icon="triangle-alert",
                            color_scheme="red",
                            size="1",
                            id="add-to-list-error",
                            width="100%",
                        ),
                    ),
                    rx.hstack(
                        rx.button(
                            "Cancel", variant="soft", color_scheme="gray", type="button", on_click=S.close_add_to_list
                        ),
                        rx.button("Add", type="submit", id="add-to-list-submit"),
                        justify="end",
                        width="100%",
                    ),
                    spacing="3",
                    width="100%",
                    margin_top="12px",
                ),
                on_submit=S.add_selected_to_list,
                reset_on_submit=False,
            ),
            max_width="460px",
        ),
        open=S.add_open,
        on_open_change=S.close_add_to_list,  # Escape (or a click outside) closes it
    )
