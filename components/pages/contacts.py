"""Contacts: the base, paged on the server."""

import reflex as rx

from components.common import data_table, empty_state, pager, search_box
from components.layout import page_shell
from state.contacts import ContactsState


def _row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(rx.text(row["name"], weight="medium")),
        rx.table.cell(row["whatsapp"]),
        rx.table.cell(row["country"]),
        rx.table.cell(row["city"]),
        rx.table.cell(row["channels"]),
        rx.table.cell(rx.cond(
            row["whatsapp"] == "", rx.text("No WhatsApp", size="1", color=rx.color("gray", 9)),
            rx.cond(row["subscribed"] == "yes", rx.badge("Subscribed", color_scheme="green", variant="soft"),
                    rx.badge("Unsubscribed", color_scheme="gray", variant="soft")))),
    )


def contacts_page() -> rx.Component:
    body = rx.vstack(
        search_box(ContactsState.search, ContactsState.set_search, "Search by name or number", "contact-search"),
        rx.cond(
            ContactsState.total > 0,
            rx.vstack(
                data_table(["Name", "WhatsApp", "Country", "City", "Channels", "WhatsApp subscription"],
                           ContactsState.rows, _row, "contacts-table"),
                pager(ContactsState.page, ContactsState.pages, ContactsState.total, ContactsState.prev_page,
                      ContactsState.next_page, "contacts"),
                width="100%", spacing="3",
            ),
            empty_state("contact", "No contacts found",
                        rx.cond(ContactsState.search != "", "No contact matches this search.",
                                "Contacts you import or add will appear here."), state_id="contacts-empty"),
        ),
        width="100%", spacing="3",
    )
    return page_shell("Contacts", rx.cond(ContactsState.loaded, body, rx.spinner()),
                      subtitle="Everyone you can reach, with their channels and consent")
