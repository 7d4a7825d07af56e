"""The app shell: side menu (SPEC S2), header with page title and actions, content area."""

from __future__ import annotations

import reflex as rx

from components import routes
from components.account_menu import change_password_button
from state.base import AppState

SIDEBAR_WIDTH = "248px"


def _nav_item(label: str, icon: str, href: str, item_id: str, indent: bool = False) -> rx.Component:
    active = rx.State.router.page.path == href
    return rx.link(
        rx.hstack(
            rx.icon(icon, size=16),
            rx.text(label, size="2", weight=rx.cond(active, "medium", "regular")),
            align="center",
            spacing="2",
            padding_x="10px",
            padding_y="7px",
            padding_left="28px" if indent else "10px",
            border_radius="var(--radius-2)",
            width="100%",
            background=rx.cond(active, rx.color("accent", 4), "transparent"),
            color=rx.cond(active, rx.color("accent", 12), rx.color("gray", 11)),  # 11 on 4 is under 4.5:1
            _hover={"background": rx.cond(active, rx.color("accent", 4), rx.color("gray", 3))},
        ),
        href=href,
        id=item_id,
        underline="none",
        width="100%",
    )


def _section(label: str) -> rx.Component:
    return rx.text(
        label,
        size="1",
        weight="medium",
        color=rx.color("gray", 10),
        padding_x="10px",
        padding_top="14px",
        padding_bottom="4px",
        text_transform="uppercase",
        letter_spacing="0.04em",
    )


def sidebar() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.image(src="/logo.svg", alt="", width="28px", height="28px"),  # the name beside it is the label
            rx.heading("Hubcast", size="4", weight="bold"),
            align="center",
            spacing="2",
            padding_x="10px",
            padding_y="6px",
        ),
        rx.vstack(
            _nav_item("Dashboard", "layout-dashboard", routes.DASHBOARD, "nav-dashboard"),
            _section("Messaging"),
            rx.hstack(
                rx.icon("messages-square", size=16),
                rx.text("Social Messaging", size="2"),
                color=rx.color("gray", 11),
                padding_x="10px",
                padding_y="7px",
                spacing="2",
                align="center",
            ),
            _nav_item("All Campaigns", "megaphone", routes.CAMPAIGNS, "nav-campaigns", indent=True),
            _section("Contacts"),
            _nav_item("Contacts", "contact", routes.CONTACTS, "nav-contacts"),
            _nav_item("Lists", "list", routes.LISTS, "nav-lists"),
            _nav_item("Segments", "filter", routes.SEGMENTS, "nav-segments"),
            _section("Setup"),
            _nav_item("Templates", "layout-template", routes.TEMPLATES, "nav-templates"),
            _nav_item("Channels", "radio-tower", routes.CHANNELS, "nav-channels"),
            rx.cond(AppState.is_admin, _nav_item("Users", "users", routes.USERS, "nav-users")),
            spacing="0",
            width="100%",
        ),
        rx.spacer(),
        rx.vstack(
            rx.hstack(
                rx.avatar(fallback=AppState.user_initials, size="2", radius="full"),
                rx.vstack(
                    rx.text(
                        AppState.user_email,
                        size="1",
                        weight="medium",
                        id="current-user-email",
                        width="100%",
                        overflow="hidden",
                        text_overflow="ellipsis",
                        white_space="nowrap",
                    ),
                    rx.badge(AppState.role_label, size="1", variant="soft", id="current-user-role"),
                    spacing="1",
                    align="start",
                    min_width="0",
                    flex="1",
                ),
                rx.color_mode.button(
                    size="1", variant="ghost", id="color-mode-button", aria_label="Switch light or dark mode"
                ),
                align="center",
                width="100%",
                spacing="2",
            ),
            rx.hstack(
                change_password_button(),
                rx.spacer(),
                rx.button(
                    rx.icon("log-out", size=14),
                    "Sign out",
                    size="1",
                    variant="ghost",
                    color_scheme="gray",
                    on_click=AppState.logout,
                    id="logout-button",
                ),
                align="center",
                width="100%",
            ),
            width="100%",
            spacing="2",
            padding="10px",
            border_top=f"1px solid {rx.color('gray', 5)}",
        ),
        # The menu stays in view while the page scrolls: sticky, one viewport high (its own scroll when shorter).
        height="100dvh",
        position="sticky",
        top="0",
        overflow_y="auto",
        padding="12px",
        spacing="2",
        width="100%",
        id="sidebar-menu",
    )


def sidebar_column(*children: rx.Component) -> rx.Component:
    """The sidebar's column: its background and border stretch down the whole page, however long the content
    beside it (a page taller than the window, a full-page screenshot), while the menu in it stays sticky."""
    return rx.box(
        *children,
        width=SIDEBAR_WIDTH,
        min_width=SIDEBAR_WIDTH,
        align_self="stretch",
        min_height="100dvh",
        background=rx.color("gray", 2),
        border_right=f"1px solid {rx.color('gray', 5)}",
        id="sidebar",
    )


def page_shell(
    title: str, *children: rx.Component, actions: rx.Component | None = None, subtitle: str = ""
) -> rx.Component:
    """A signed-in page. Content renders only once the server confirmed the session."""
    header = rx.hstack(
        rx.vstack(
            rx.heading(title, size="6", weight="bold", id="page-title"),
            rx.cond(subtitle != "", rx.text(subtitle, size="2", color=rx.color("gray", 10))),
            spacing="1",
        ),
        rx.spacer(),
        actions or rx.fragment(),
        align="center",
        width="100%",
    )
    return rx.cond(
        AppState.signed_in,
        rx.hstack(
            sidebar_column(sidebar()),
            rx.box(
                rx.vstack(header, *children, spacing="5", width="100%", max_width="1200px"),
                padding_x="32px",
                padding_y="28px",
                width="100%",
                min_height="100vh",
            ),
            spacing="0",
            align="start",
            width="100%",
        ),
        rx.center(rx.spinner(size="3"), height="100vh"),
    )
