"""The side menu's "Change password" button and dialog (issue 13 item 8): every signed-in user."""

from __future__ import annotations

import reflex as rx

from app.domain.passwords import MIN_LENGTH
from state.account import AccountState


def _password_field(label: str, name: str, field_id: str, autocomplete: str, hint: str = "") -> rx.Component:
    return rx.vstack(
        rx.el.label(label, html_for=field_id, style={"fontSize": "var(--font-size-2)", "fontWeight": "500"}),
        rx.input(
            name=name,
            id=field_id,
            type="password",
            required=True,
            auto_complete=autocomplete,
            max_length=256,
            width="100%",
        ),
        rx.cond(hint != "", rx.text(hint, size="1", color=rx.color("gray", 10))),
        spacing="1",
        width="100%",
    )


def change_password_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Change password"),
            rx.dialog.description(
                "Your other signed-in browsers will be signed out.", size="2", color=rx.color("gray", 10)
            ),
            rx.form(
                rx.vstack(
                    _password_field("Current password", "current_password", "current-password", "current-password"),
                    _password_field(
                        "New password",
                        "new_password",
                        "new-password",
                        "new-password",
                        hint=f"At least {MIN_LENGTH} characters; common or easily guessed passwords are refused.",
                    ),
                    _password_field("Confirm new password", "confirm_password", "confirm-password", "new-password"),
                    rx.cond(
                        AccountState.password_error != "",
                        rx.callout(
                            AccountState.password_error,
                            icon="triangle-alert",
                            color_scheme="red",
                            size="1",
                            id="change-password-error",
                            role="alert",
                        ),
                    ),
                    rx.hstack(
                        rx.button(
                            "Cancel",
                            variant="soft",
                            color_scheme="gray",
                            type="button",
                            on_click=AccountState.close_change_password,
                        ),
                        rx.button("Change password", type="submit", id="change-password-submit"),
                        justify="end",
                        width="100%",
                    ),
                    spacing="3",
                    margin_top="12px",
                ),
                on_submit=AccountState.change_password,
                reset_on_submit=False,
            ),
        ),
        open=AccountState.password_dialog_open,
    )


def change_password_button() -> rx.Component:
    return rx.fragment(
        rx.button(
            rx.icon("key-round", size=14),
            "Change password",
            size="1",
            variant="ghost",
            color_scheme="gray",
            on_click=AccountState.open_change_password,
            id="change-password-button",
        ),
        change_password_dialog(),
    )
