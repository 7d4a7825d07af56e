"""The Lists page (SPEC S6) and one list's members (/lists/[list_id])."""

import reflex as rx

from components import routes
from components.common import data_table, empty_state, field_label, pager, search_box
from components.layout import page_shell
from state.base import AppState
from state.lists import ListDetailState, ListsState

# Display only: every handler behind these controls checks audiences:manage on the server.
CAN_MANAGE = AppState.can_manage_audiences


def _list_row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(
            rx.link(row["name"], href=routes.LISTS + "/" + row["id"], weight="medium", class_name="list-link")
        ),
        rx.table.cell(row["members"]),
        rx.table.cell(rx.badge(row["source"], variant="soft")),
        rx.table.cell(row["description"]),
        rx.table.cell(row["created"]),
        rx.cond(
            CAN_MANAGE,
            rx.table.cell(
                rx.hstack(
                    rx.button(
                        "Rename",
                        size="1",
                        variant="soft",
                        on_click=ListsState.open_rename(row["id"]),
                        class_name="list-rename",
                    ),
                    rx.button(
                        "Delete",
                        size="1",
                        variant="soft",
                        color_scheme="red",
                        on_click=ListsState.ask_delete(row["id"]),
                        class_name="list-delete",
                    ),
                    spacing="2",
                )
            ),
        ),
        align="center",
    )


def _list_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(rx.cond(ListsState.dialog_list_id == "", "Create a list", "Rename the list")),
            rx.form(
                rx.vstack(
                    rx.vstack(
                        field_label("Name", "list-name"),
                        rx.input(
                            name="name",
                            default_value=ListsState.dialog_name,
                            placeholder="List name",
                            id="list-name",
                            width="100%",
                            required=True,
                            max_length=120,
                        ),
                        spacing="1",
                        width="100%",
                    ),
                    rx.vstack(
                        field_label("Description (optional)", "list-description"),
                        rx.text_area(
                            name="description",
                            default_value=ListsState.dialog_description,
                            placeholder="Description (optional)",
                            id="list-description",
                            width="100%",
                        ),
                        spacing="1",
                        width="100%",
                    ),
                    rx.cond(
                        ListsState.form_error != "",
                        rx.callout(
                            ListsState.form_error,
                            icon="triangle-alert",
                            color_scheme="red",
                            size="1",
                            id="list-form-error",
                            width="100%",
                        ),
                    ),
                    rx.hstack(
                        rx.button(
                            "Cancel",
                            variant="soft",
                            color_scheme="gray",
                            type="button",
                            on_click=ListsState.close_dialog,
                        ),
                        rx.button(
                            rx.cond(ListsState.dialog_list_id == "", "Create list", "Save"),
                            type="submit",
                            id="list-save",
                        ),
                        justify="end",
                        width="100%",
                    ),
                    spacing="3",
                    width="100%",
                ),
                on_submit=ListsState.save_list,
                key=ListsState.form_key,
            ),
            max_width="460px",
        ),
        open=ListsState.dialog_open,
        on_open_change=ListsState.close_dialog,  # Escape (or a click outside) closes it
    )


def _delete_dialog() -> rx.Component:
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title("Delete the list ", ListsState.delete_name, "?"),
            rx.alert_dialog.description("The list goes away; its contacts stay in the base.", size="2"),
            rx.hstack(
                rx.button("Cancel", variant="soft", color_scheme="gray", on_click=ListsState.cancel_delete),
                rx.button(
                    "Delete list", color_scheme="red", on_click=ListsState.confirm_delete, id="list-delete-confirm"
                ),
                justify="end",
                width="100%",
                margin_top="16px",
            ),
        ),
        open=ListsState.delete_id != "",
    )


def lists_page() -> rx.Component:
    headers = ["Name", "Members", "Source", "Description", "Created"]
    table = rx.cond(
        CAN_MANAGE,
        data_table([*headers, ""], ListsState.rows, _list_row, "lists-table"),
        data_table(headers, ListsState.rows, _list_row, "lists-table"),
    )
    return page_shell(
        "Lists",
        rx.cond(
            ListsState.return_to != "",
            rx.callout(
                "Create the list, and you'll go back to your campaign.",
                icon="corner-down-left",
                size="1",
                id="lists-return-hint",
            ),
        ),
        rx.cond(
            ListsState.loaded,
            rx.cond(
                ListsState.rows.length() > 0,
                table,
                empty_state(
                    "list",
                    "No contact lists yet",
                    "A list is a fixed set of contacts, made by hand, by import, or by an integration.",
                    state_id="lists-empty",
                ),
            ),
            rx.center(rx.spinner(), padding="48px", width="100%"),
        ),
        _list_dialog(),
        _delete_dialog(),
        actions=rx.cond(
            CAN_MANAGE,
            rx.button(
                rx.icon("plus", size=16), "Create list", size="3", on_click=ListsState.open_create, id="create-list"
            ),
        ),
        subtitle="Static sets of contacts",
    )


# --- one list ------------------------------------------------------------------------------------

D = ListDetailState


def _member_row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.cond(
            CAN_MANAGE,
            rx.table.cell(
                rx.checkbox(
                    checked=D.selected_ids.contains(row["id"]),
                    on_change=lambda c: D.toggle_member(row["id"], c),
                    aria_label="Select this member",
                    class_name="member-select",
                )
            ),
        ),
        rx.table.row_header_cell(rx.text(row["name"], weight="medium")),
        rx.table.cell(row["whatsapp"]),
        rx.table.cell(row["country"]),
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
        rx.table.cell(rx.badge(row["source"], variant="soft", color_scheme="violet")),
        rx.table.cell(row["added"]),
        align="center",
    )


def _members_table() -> rx.Component:
    headers = ["Name", "WhatsApp", "Country", "WhatsApp subscription", "Source", "Added"]
    return rx.box(
        rx.table.root(
            rx.table.header(
                rx.table.row(
                    rx.cond(CAN_MANAGE, rx.table.column_header_cell("", width="36px")),
                    *[rx.table.column_header_cell(h) for h in headers],
                )
            ),
            rx.table.body(rx.foreach(D.rows, _member_row)),
            variant="surface",
            size="2",
            width="100%",
            id="list-members-table",
        ),
        width="100%",
        overflow_x="auto",
    )


def list_detail_page() -> rx.Component:
    body = rx.vstack(
        rx.hstack(
            rx.link(
                rx.hstack(rx.icon("arrow-left", size=14), rx.text("All lists", size="2"), align="center", spacing="1"),
                href=routes.LISTS,
                id="back-to-lists",
            ),
            rx.spacer(),
            rx.cond(
                CAN_MANAGE,
                rx.link(
                    rx.button(rx.icon("list-plus", size=14), "Add contacts", variant="soft", size="2"),
                    href=routes.CONTACTS,
                    id="list-add-contacts",
                ),
            ),
            width="100%",
            align="center",
        ),
        rx.cond(D.description != "", rx.text(D.description, size="2", color=rx.color("gray", 10))),
        rx.hstack(
            search_box(D.search, D.set_search, "Search members by name or number", "member-search"),
            rx.spacer(),
            rx.cond(
                CAN_MANAGE & (D.selected_ids.length() > 0),
                rx.button(
                    rx.icon("user-minus", size=14),
                    "Remove ",
                    D.selected_ids.length(),
                    " from list",
                    color_scheme="red",
                    variant="soft",
                    on_click=D.remove_selected,
                    id="remove-members",
                ),
            ),
            width="100%",
            align="center",
        ),
        rx.cond(
            D.total > 0,
            rx.vstack(
                _members_table(),
                pager(D.page, D.pages, D.total, D.prev_page, D.next_page, "members"),
                width="100%",
                spacing="3",
            ),
            empty_state(
                "users",
                "No members",
                rx.cond(
                    D.search != "",
                    "No member matches this search.",
                    'Select contacts on the Contacts page and choose "Add to list", or import a CSV into this list.',
                ),
                state_id="list-members-empty",
            ),
        ),
        width="100%",
        spacing="3",
    )
    return page_shell(
        rx.cond(D.loaded & ~D.missing, D.name, "List"),
        rx.cond(
            D.loaded,
            rx.cond(
                D.missing,
                empty_state(
                    "list-x",
                    "This list does not exist",
                    "It may have been deleted.",
                    rx.link("Back to lists", href=routes.LISTS),
                    state_id="list-missing",
                ),
                body,
            ),
            rx.center(rx.spinner(), padding="48px", width="100%"),
        ),
        subtitle="Members, and how each was added",
    )
