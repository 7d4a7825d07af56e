"""Contacts: the base, paged on the server, with filters, the contact dialog, "Add to list" and the import."""

import reflex as rx

from components.common import empty_state, pager, search_box
from components.contact_form import add_to_list_dialog, contact_dialog
from components.import_dialog import import_dialog
from components.layout import page_shell
from state.base import AppState
from state.contact_import import ContactImportState
from state.contacts import ContactsState

S = ContactsState
# Display only: every handler behind these controls checks audiences:manage on the server.
CAN_MANAGE = AppState.can_manage_audiences
_CHANNEL_BADGES = [("whatsapp", "WA"), ("sms", "SMS"), ("instagram", "IG"), ("messenger", "FB")]


def _channel_badges(row: rx.Var) -> rx.Component:
    return rx.hstack(
        *[
            rx.cond(
                row[f"sub_{t}"] == "",
                rx.fragment(),
                rx.tooltip(
                    rx.badge(
                        label,
                        # Not colour alone (SPEC S20): a check when subscribed, a "no entry" sign when not.
                        rx.cond(row[f"sub_{t}"] == "subscribed", rx.icon("check", size=10), rx.icon("ban", size=10)),
                        variant="soft",
                        size="1",
                        color_scheme=rx.cond(row[f"sub_{t}"] == "subscribed", "green", "gray"),
                    ),
                    content=rx.cond(row[f"sub_{t}"] == "subscribed", f"{label}: subscribed", f"{label}: unsubscribed"),
                ),
            )
            for t, label in _CHANNEL_BADGES
        ],
        spacing="1",
    )


def _row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.cond(
            CAN_MANAGE,
            rx.table.cell(
                rx.checkbox(
                    checked=S.selected_ids.contains(row["id"]),
                    on_change=lambda c: S.toggle_selected(row["id"], c),
                    aria_label="Select this contact",
                    class_name="contact-select",
                )
            ),
        ),
        rx.table.row_header_cell(
            rx.cond(
                CAN_MANAGE,
                rx.link(
                    row["name"],
                    on_click=S.open_edit_contact(row["id"]),
                    weight="medium",
                    cursor="pointer",
                    underline="hover",
                    class_name="contact-name",
                ),
                rx.text(row["name"], weight="medium"),
            )
        ),
        rx.table.cell(row["whatsapp"]),
        rx.table.cell(row["country"]),
        rx.table.cell(row["city"]),
        rx.table.cell(_channel_badges(row)),
        rx.table.cell(
            rx.cond(
                row["whatsapp"] == "",
                rx.text("No WhatsApp", size="1", color=rx.color("gray", 9)),
                rx.cond(
                    row["subscribed"] == "yes",
                    rx.badge("Subscribed", color_scheme="green", variant="soft"),
                    rx.badge("Unsubscribed", color_scheme="gray", variant="soft"),
                ),
            )
        ),
        align="center",
    )


def _filter(
    value: rx.Var, options: list[tuple[str, str]] | rx.Var, on_change, all_label: str, filter_id: str, name: str
) -> rx.Component:
    if isinstance(options, list):
        items = [rx.select.item(label, value=v) for v, label in options]
    else:
        items = [rx.foreach(options, lambda c: rx.select.item(c, value=c))]
    return rx.select.root(
        rx.select.trigger(id=filter_id, min_width="150px", aria_label=name),
        rx.select.content(rx.select.item(all_label, value="all"), *items),
        value=rx.cond(value == "", "all", value),
        on_change=on_change,
    )


def _toolbar() -> rx.Component:
    return rx.hstack(
        search_box(S.search, S.set_search, "Search by name or +number", "contact-search"),
        _filter(
            S.country_filter, S.countries, S.set_country_filter, "All countries", "contact-country-filter", "Country"
        ),
        _filter(
            S.channel_filter,
            [("whatsapp", "WhatsApp"), ("sms", "SMS"), ("instagram", "Instagram"), ("messenger", "Messenger")],
            S.set_channel_filter,
            "All channels",
            "contact-channel-filter",
            "Channel",
        ),
        _filter(
            S.subscription_filter,
            [("subscribed", "Subscribed"), ("unsubscribed", "Unsubscribed")],
            S.set_subscription_filter,
            "Any subscription",
            "contact-subscription-filter",
            "WhatsApp subscription",
        ),
        width="100%",
        wrap="wrap",
        spacing="2",
    )


def _selection_bar() -> rx.Component:
    return rx.cond(
        CAN_MANAGE & (S.selected_ids.length() > 0),
        rx.hstack(
            rx.text(S.selected_ids.length(), " selected", size="2", weight="medium", id="contacts-selected-count"),
            rx.button(
                rx.icon("list-plus", size=14), "Add to list", size="2", on_click=S.open_add_to_list, id="add-to-list"
            ),
            rx.button("Clear selection", size="2", variant="ghost", color_scheme="gray", on_click=S.clear_selection),
            align="center",
            spacing="3",
            padding="8px 12px",
            border_radius="var(--radius-3)",
            background=rx.color("accent", 3),
            width="100%",
        ),
    )


def _headers() -> list:
    return ["Name", "WhatsApp", "Country", "City", "Channels", "WhatsApp subscription"]


def _table() -> rx.Component:
    select_all = rx.checkbox(
        checked=S.page_all_selected, on_change=S.select_page, aria_label="Select this page", id="contacts-select-page"
    )
    return rx.box(
        rx.table.root(
            rx.table.header(
                rx.table.row(
                    rx.cond(CAN_MANAGE, rx.table.column_header_cell(select_all, width="36px")),
                    *[rx.table.column_header_cell(h) for h in _headers()],
                )
            ),
            rx.table.body(rx.foreach(S.rows, _row)),
            variant="surface",
            size="2",
            width="100%",
            id="contacts-table",
        ),
        width="100%",
        overflow_x="auto",
    )


def contacts_page() -> rx.Component:
    body = rx.vstack(
        _toolbar(),
        _selection_bar(),
        rx.cond(
            S.total > 0,
            rx.vstack(
                _table(),
                pager(S.page, S.pages, S.total_label, S.prev_page, S.next_page, "contacts"),
                width="100%",
                spacing="3",
            ),
            empty_state(
                "contact",
                "No contacts found",
                rx.cond(
                    (S.search != "")
                    | (S.country_filter != "")
                    | (S.channel_filter != "")
                    | (S.subscription_filter != ""),
                    "No contact matches this search.",
                    "Contacts you import or add will appear here.",
                ),
                state_id="contacts-empty",
            ),
        ),
        width="100%",
        spacing="3",
    )
    actions = rx.cond(
        CAN_MANAGE,
        rx.hstack(
            rx.button(
                rx.icon("upload", size=16),
                "Import contacts",
                variant="soft",
                size="3",
                on_click=ContactImportState.open_import,
                id="import-contacts",
            ),
            rx.button(
                rx.icon("user-plus", size=16), "Add contact", size="3", on_click=S.open_new_contact, id="add-contact"
            ),
            spacing="2",
        ),
    )
    return page_shell(
        "Contacts",
        rx.cond(S.loaded, body, rx.spinner()),
        contact_dialog(),
        add_to_list_dialog(),
        import_dialog(),
        actions=actions,
        subtitle="Everyone you can reach, with their channels and consent",
    )
