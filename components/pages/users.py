"""Users (admin): create, change role, reset a password, deactivate."""

import reflex as rx

from app.domain.permissions import ROLE_LABELS, ROLES
from components import routes
from components.common import data_table, field_label
from components.layout import page_shell
from state.users import UsersState


def _row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(
            rx.vstack(
                rx.text(row["email"], weight="medium"),
                rx.text(row["name"], size="1", color=rx.color("gray", 10)),
                spacing="0",
            )
        ),
        rx.table.cell(
            rx.select.root(
                rx.select.trigger(aria_label="Role of " + row["email"]),
                rx.select.content(*[rx.select.item(ROLE_LABELS[r], value=r) for r in ROLES]),
                value=row["role"],
                size="1",
                disabled=row["me"] == "yes",
                on_change=lambda role: UsersState.change_role(row["id"], role),
            )
        ),
        rx.table.cell(
            rx.cond(
                row["active"] == "yes",
                rx.badge("Active", color_scheme="green", variant="soft"),
                rx.badge("Deactivated", color_scheme="gray", variant="soft"),
            )
        ),
        rx.table.cell(row["last_login"]),
        rx.table.cell(
            rx.cond(
                row["me"] == "yes",
                rx.text("You", size="1", color=rx.color("gray", 10)),
                rx.hstack(
                    rx.button(
                        "Reset password",
                        size="1",
                        variant="soft",
                        color_scheme="gray",
                        on_click=UsersState.ask_reset_password(row["id"]),
                        aria_label="Reset password of " + row["email"],
                    ),
                    rx.cond(
                        row["active"] == "yes",
                        rx.button(
                            "Deactivate",
                            size="1",
                            variant="soft",
                            color_scheme="red",
                            on_click=UsersState.set_active(row["id"], False),
                        ),
                        rx.button(
                            "Reactivate", size="1", variant="soft", on_click=UsersState.set_active(row["id"], True)
                        ),
                    ),
                    spacing="2",
                ),
            )
        ),
        align="center",
    )


def _labelled(label: str, control_id: str, control: rx.Component) -> rx.Component:
    return rx.vstack(field_label(label, control_id), control, spacing="1", width="100%")


def _create_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Add a user"),
            rx.cond(
                UsersState.created_password != "",
                rx.vstack(
                    rx.callout(
                        rx.text("Give this password to ", UsersState.created_email, ". It will not be shown again."),
                        icon="key-round",
                        color_scheme="amber",
                    ),
                    rx.code(UsersState.created_password, size="4", id="generated-password"),
                    rx.button("Done", on_click=UsersState.close_create),
                    spacing="3",
                ),
                rx.form(
                    rx.vstack(
                        _labelled(
                            "Email",
                            "new-user-email",
                            rx.input(
                                name="email",
                                placeholder="name@company.com",
                                type="email",
                                required=True,
                                id="new-user-email",
                                width="100%",
                            ),
                        ),
                        _labelled("Name", "new-user-name", rx.input(name="name", id="new-user-name", width="100%")),
                        _labelled(
                            "Role",
                            "new-user-role",
                            rx.select.root(
                                rx.select.trigger(
                                    placeholder="Role",
                                    width="100%",
                                    id="new-user-role",
                                    aria_labelledby="new-user-role-label",
                                ),
                                rx.select.content(*[rx.select.item(ROLE_LABELS[r], value=r) for r in ROLES]),
                                name="role",
                                default_value="basic",
                            ),
                        ),
                        _labelled(
                            "Password",
                            "new-user-password",
                            rx.input(
                                name="password",
                                type="password",
                                id="new-user-password",
                                width="100%",
                                placeholder="Leave empty to generate one",
                            ),
                        ),
                        rx.cond(
                            UsersState.form_error != "",
                            rx.callout(
                                UsersState.form_error,
                                icon="triangle-alert",
                                color_scheme="red",
                                size="1",
                                id="user-form-error",
                            ),
                        ),
                        rx.hstack(
                            rx.button(
                                "Cancel",
                                variant="soft",
                                color_scheme="gray",
                                type="button",
                                on_click=UsersState.close_create,
                            ),
                            rx.button("Create user", type="submit", id="create-user-submit"),
                            justify="end",
                            width="100%",
                        ),
                        spacing="3",
                    ),
                    on_submit=UsersState.create_user,
                ),
            ),
        ),
        open=UsersState.dialog_open,
        on_open_change=UsersState.close_create,  # Escape (or a click outside) closes it
    )


def _reset_dialog() -> rx.Component:
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title("Reset password"),
            rx.cond(
                UsersState.reset_password_value != "",
                rx.vstack(
                    rx.callout(
                        rx.text(
                            "Give this new password to ",
                            UsersState.reset_email,
                            ". It will not be shown again; they were signed out everywhere.",
                        ),
                        icon="key-round",
                        color_scheme="amber",
                    ),
                    rx.code(UsersState.reset_password_value, size="4", id="reset-password-value"),
                    rx.hstack(
                        rx.alert_dialog.cancel(rx.button("Done", on_click=UsersState.close_reset_password)),
                        justify="end",
                        width="100%",
                    ),
                    spacing="3",
                ),
                rx.vstack(
                    rx.alert_dialog.description(
                        rx.text(
                            "Give ",
                            UsersState.reset_email,
                            " a new generated password? Their current password stops working and they are "
                            "signed out of every browser.",
                        )
                    ),
                    rx.hstack(
                        rx.alert_dialog.cancel(
                            rx.button(
                                "Cancel", variant="soft", color_scheme="gray", on_click=UsersState.close_reset_password
                            )
                        ),
                        rx.button("Reset password", color_scheme="red", on_click=UsersState.reset_password),
                        justify="end",
                        width="100%",
                    ),
                    spacing="3",
                ),
            ),
        ),
        open=UsersState.reset_email != "",
    )


def users_page() -> rx.Component:
    return page_shell(
        "Users",
        rx.cond(
            UsersState.loaded,
            data_table(["User", "Role", "Status", "Last sign-in", ""], UsersState.rows, _row, "users-table"),
            rx.center(rx.spinner(), padding="48px", width="100%"),
        ),
        _create_dialog(),
        _reset_dialog(),
        actions=rx.hstack(
            rx.link(
                rx.button(rx.icon("scroll-text", size=16), "Audit log", variant="soft", size="3"),
                href=routes.AUDIT,
                id="open-audit-log",
            ),
            rx.button(
                rx.icon("user-plus", size=16), "Add user", on_click=UsersState.open_create, id="add-user", size="3"
            ),
            spacing="3",
            align="center",
        ),
        subtitle="Who can use Hubcast, and what they can do",
    )
