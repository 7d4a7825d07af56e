"""A campaign's results (SPEC S16): status, analytics cards with rates, the per-recipient table, CSV export."""

import reflex as rx

from app.domain.campaign_status import RECIPIENT_STATUS_LABELS as LABELS
from components import routes
from components.campaign_insight import campaign_insight
from components.common import data_table, pager, search_box, status_badge, status_filter
from components.health_banner import worker_paused_banner
from components.layout import page_shell
from components.progress import progress_bar
from state.campaign_detail import STATUS_OPTIONS
from state.campaign_detail import CampaignDetailState as S

CARDS = [  # (key, label, rate key, icon, color)
    ("total", "Recipients", "waiting_note", "users", "gray"),
    ("sent", LABELS["sent"], "sent_rate", "send", "gray"),
    ("delivered", LABELS["delivered"], "delivered_rate", "check-check", "blue"),
    ("read", LABELS["read"], "read_rate", "eye", "grass"),
    ("failed", LABELS["failed"], "failed_rate", "circle-x", "red"),
    ("unknown", LABELS["unknown"], "unknown_rate", "circle-help", "amber"),
    ("limited", LABELS["limited"], "limited_rate", "shield-alert", "orange"),  # 131049 (issue 12)
    ("replied", "Replied", "replied_rate", "reply", "violet"),
]
# A recipient's status in the table: the cards' icon and colour beside the name users know (never colour alone).
RECIPIENT_BADGES = {  # status: (icon, color)
    "queued": ("clock", "gray"),
    "sending": ("loader", "amber"),
    "sent": ("send", "gray"),
    "delivered": ("check-check", "blue"),
    "read": ("eye", "grass"),
    "failed": ("circle-x", "red"),
    "unknown": ("circle-help", "amber"),
    "skipped": ("circle-slash", "gray"),
    "limited": ("shield-alert", "orange"),
}
# The status filter: the same names, in the service's order.
FILTER_OPTIONS = [("all", "All statuses")] + [(s, LABELS[s]) for s in STATUS_OPTIONS if s != "all"]


def _card(key: str, label: str, rate: str, icon: str, color: str) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.icon(icon, size=14, color=rx.color(color, 10)),
                rx.text(label, size="1", color=rx.color("gray", 10)),
                spacing="1",
                align="center",
            ),
            rx.heading(S.campaign[key], size="6", id=f"card-{key}"),
            rx.text(S.campaign[rate], size="1", color=rx.color("gray", 10), id=f"card-{key}-rate"),
            spacing="1",
        ),
        flex="1",
        min_width="120px",
    )


def recipient_status_badge(status: rx.Var, label: rx.Var) -> rx.Component:
    return rx.badge(
        rx.match(status, *[(s, rx.icon(icon, size=12)) for s, (icon, _) in RECIPIENT_BADGES.items()], rx.fragment()),
        label,
        color_scheme=rx.match(status, *[(s, color) for s, (_, color) in RECIPIENT_BADGES.items()], "gray"),
        variant="soft",
        radius="full",
        class_name="recipient-status",
    )


def _row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(rx.text(row["number"], font_family="monospace", size="2")),
        rx.table.cell(recipient_status_badge(row["status"], row["status_label"])),
        rx.table.cell(
            rx.text(
                row["wamid"],
                size="1",
                color=rx.color("gray", 10),
                max_width="220px",
                overflow="hidden",
                text_overflow="ellipsis",
                white_space="nowrap",
                title=row["wamid"],
            )
        ),
        rx.table.cell(
            rx.cond(
                row["error_code"] != "",
                rx.text(row["error_code"], " · ", row["error_title"], size="2", color=rx.color("red", 11)),
                rx.text("—", color=rx.color("gray", 8)),
            )
        ),
        rx.table.cell(rx.text(row["updated"], size="2")),
        id="recipient-row-" + row["id"],
    )


def _header() -> rx.Component:
    return rx.hstack(
        status_badge(S.campaign["status"], S.campaign["status_label"]),
        rx.cond(
            S.live,
            rx.badge(rx.icon("radio", size=12), "Live", color_scheme="grass", variant="soft", id="campaign-live"),
        ),
        rx.text(
            S.campaign["channel"],
            rx.cond(S.campaign["template"] != "", " · " + S.campaign["template"], ""),
            size="2",
            color=rx.color("gray", 10),
        ),
        rx.cond(
            S.campaign["started"] != "",
            rx.text("Started ", S.campaign["started"], size="2", color=rx.color("gray", 10)),
        ),
        rx.spacer(),
        rx.box(progress_bar(S.campaign["progress"], "campaign-progress-bar"), width="200px"),
        rx.text(S.campaign["progress"], "% processed", size="1", color=rx.color("gray", 10)),
        align="center",
        width="100%",
        spacing="3",
        id="campaign-header",
    )


def _actions() -> rx.Component:
    return rx.hstack(
        rx.link(
            rx.button(rx.icon("arrow-left", size=14), "All Campaigns", variant="soft", color_scheme="gray"),
            href=routes.CAMPAIGNS,
            id="back-to-campaigns",
        ),
        # Pause / resume / cancel arrive with the sending engine's controls.
        # A plain browser download of the HTTP route (session cookie checked there): the file streams from
        # the database and never passes through the websocket state.
        rx.button(
            rx.icon("download", size=14),
            "Export CSV",
            variant="outline",
            id="export-csv",
            on_click=rx.download(url=S.export_url),
            disabled=S.export_url == "",
        ),
        spacing="2",
    )


def _results() -> rx.Component:
    return rx.vstack(
        _header(),
        rx.cond(
            S.campaign["pause_reason"] != "",
            rx.callout(S.campaign["pause_reason"], icon="triangle-alert", color_scheme="orange", width="100%"),
        ),
        rx.cond(  # rows held back by Meta's daily messaging limit, live (issue 12)
            S.campaign["quota_note"],
            rx.callout(
                S.campaign["quota_note"], icon="hourglass", color_scheme="amber", width="100%", id="campaign-quota-wait"
            ),
        ),
        rx.hstack(*[_card(*c) for c in CARDS], spacing="3", width="100%", wrap="wrap", id="campaign-cards"),
        campaign_insight(),
        rx.hstack(
            search_box(S.search, S.set_search, "Search by number", "recipient-search"),
            status_filter(
                "recipient-status-filter",
                FILTER_OPTIONS,
                S.status_filter,
                S.filter_status,
                aria_label="Recipient status",
            ),
            width="100%",
        ),
        rx.cond(
            S.rows.length() > 0,
            data_table(["Number", "Status", "Message id", "Error", "Last update"], S.rows, _row, "recipients-table"),
            rx.center(
                rx.text("No recipient matches.", color=rx.color("gray", 10)),
                padding="32px",
                width="100%",
                id="recipients-empty",
            ),
        ),
        pager(S.page, S.pages, S.total, S.prev_page, S.next_page, "recipients"),
        width="100%",
        spacing="4",
    )


def campaign_detail_page() -> rx.Component:
    return page_shell(
        "Campaign results",
        worker_paused_banner(),
        rx.cond(
            S.loaded,
            rx.cond(
                S.error != "",
                rx.callout(S.error, icon="circle-alert", color_scheme="red", id="campaign-error"),
                rx.vstack(
                    rx.heading(S.campaign["name"], size="5", id="campaign-name"), _results(), width="100%", spacing="4"
                ),
            ),
            rx.center(rx.spinner(), padding="48px", width="100%"),
        ),
        actions=_actions(),
        subtitle="Social Messaging · WhatsApp",
    )
