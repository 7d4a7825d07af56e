"""Sign-in page."""

import reflex as rx

from components.common import field_label
from state.login import LoginState


def login_page() -> rx.Component:
    return rx.center(
        rx.card(
            rx.form(
                rx.vstack(
                    rx.hstack(
                        rx.center(
                            rx.icon("send", size=18, color="white"),
                            width="36px",
                            height="36px",
                            border_radius="10px",
                            background=rx.color("accent", 9),
                        ),
                        rx.heading("Hubcast", size="6", weight="bold"),
                        align="center",
                        spacing="3",
                    ),
                    rx.text(
                        "Sign in to send and follow your WhatsApp campaigns.", size="2", color=rx.color("gray", 10)
                    ),
                    rx.vstack(
                        field_label("Email", "login-email"),
                        rx.input(
                            name="email",
                            id="login-email",
                            type="email",
                            placeholder="you@company.com",
                            required=True,
                            auto_complete="username",
                            width="100%",
                            size="3",
                        ),
                        spacing="1",
                        width="100%",
                    ),
                    rx.vstack(
                        field_label("Password", "login-password"),
                        rx.input(
                            name="password",
                            id="login-password",
                            type="password",
                            required=True,
                            auto_complete="current-password",
                            width="100%",
                            size="3",
                        ),
                        spacing="1",
                        width="100%",
                    ),
                    rx.cond(
                        LoginState.error != "",
                        rx.callout(
                            LoginState.error,
                            icon="triangle-alert",
                            color_scheme="red",
                            size="1",
                            id="login-error",
                            width="100%",
                        ),
                    ),
                    # Disabled until the page is live: a submit before that would be a plain GET
                    # with the password in the URL (and so in history and access logs).
                    rx.button(
                        "Sign in",
                        type="submit",
                        size="3",
                        width="100%",
                        id="login-submit",
                        disabled=~rx.State.is_hydrated,
                    ),
                    spacing="4",
                    width="100%",
                ),
                on_submit=LoginState.submit,
                reset_on_submit=False,
                method="post",
            ),
            size="4",
            width="400px",
        ),
        height="100vh",
        background=rx.color("gray", 2),
    )
