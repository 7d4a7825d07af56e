"""The Templates page (SPEC S8): list, filters, per-channel sync, detail with preview, new Sandbox template."""

import reflex as rx

from app.domain import template_rules as rules
from components.common import data_table, empty_state, pager
from components.layout import page_shell
from components.template_form import new_template_dialog
from components.whatsapp_preview import whatsapp_preview
from state.templates import TemplatesState

# Display only: the server checks templates:manage on every handler.
CAN_MANAGE = TemplatesState.can_manage


def template_status_badge(status: rx.Var) -> rx.Component:
    """Meta's review states; only APPROVED is sendable, PAUSED / DISABLED stop sends that use it."""
    color = rx.match(
        status,
        ("APPROVED", "green"),
        ("PENDING", "amber"),
        ("IN_APPEAL", "amber"),
        ("REJECTED", "red"),
        ("DISABLED", "red"),
        ("PAUSED", "orange"),
        "gray",
    )
    return rx.badge(status, color_scheme=color, variant="soft", radius="full")


def quality_badge(score: rx.Var) -> rx.Component:
    """Meta's quality score of a template (from its quality webhooks); nothing when never reported."""
    color = rx.match(score, ("GREEN", "green"), ("YELLOW", "amber"), ("RED", "red"), "gray")
    label = rx.match(score, ("GREEN", "High"), ("YELLOW", "Medium"), ("RED", "Low"), ("UNKNOWN", "Unknown"), score)
    return rx.cond(score != "", rx.badge(label, color_scheme=color, variant="surface", radius="full"), rx.text("—"))


def _template_row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(
            rx.vstack(
                rx.link(
                    row["name"],
                    on_click=TemplatesState.open_detail(row["id"]),
                    weight="medium",
                    cursor="pointer",
                    id="template-" + row["id"],
                    underline="hover",
                ),
                # Components Hubcast cannot fill: the wizard never offers it; say why here.
                rx.cond(
                    row["unsendable"] != "",
                    rx.text(row["unsendable"], size="1", color=rx.color("red", 11), max_width="420px"),
                ),
                spacing="1",
            ),
        ),
        rx.table.cell(row["language"]),
        rx.table.cell(row["category"]),
        rx.table.cell(
            rx.vstack(
                rx.hstack(
                    template_status_badge(row["status"]),
                    rx.cond(
                        row["unsendable"] != "",
                        rx.badge("Can't send", color_scheme="red", variant="outline", radius="full"),
                    ),
                    spacing="1",
                ),
                rx.cond(
                    row["status_reason"] != "",
                    rx.text(row["status_reason"], size="1", color=rx.color("gray", 10), max_width="260px"),
                ),
                spacing="1",
            )
        ),
        rx.table.cell(quality_badge(row["quality"])),
        rx.table.cell(
            rx.hstack(
                rx.text(row["channel"]),
                rx.cond(
                    row["sandbox"] == "yes", rx.badge("Simulator", color_scheme="violet", variant="soft", size="1")
                ),
                spacing="2",
                align="center",
            )
        ),
        align="center",
    )


def _channel_sync(channel: rx.Var) -> rx.Component:
    return rx.card(
        rx.hstack(
            rx.vstack(
                rx.text(channel["name"], weight="medium", size="2"),
                rx.text(
                    channel["templates"],
                    " templates",
                    rx.cond(channel["synced"] != "", rx.text.span(" · synced ", channel["synced"]), ""),
                    size="1",
                    color=rx.color("gray", 10),
                ),
                spacing="0",
            ),
            rx.cond(
                CAN_MANAGE,
                rx.button(
                    rx.icon("refresh-cw", size=14),
                    "Sync templates",
                    size="1",
                    variant="soft",
                    loading=TemplatesState.syncing_id == channel["id"],
                    disabled=(TemplatesState.syncing_id != "") | (channel["status"] == "disconnected"),
                    on_click=TemplatesState.sync_channel(channel["id"]),
                    id="sync-templates-" + channel["id"],
                ),
            ),
            align="center",
            spacing="4",
        ),
        size="1",
    )


def _filters() -> rx.Component:
    return rx.hstack(
        rx.input(
            rx.input.slot(rx.icon("search", size=14)),
            placeholder="Search by name",
            width="240px",
            on_change=TemplatesState.search_templates,
            debounce_timeout=300,
            id="template-search",
        ),
        rx.select.root(
            rx.select.trigger(placeholder="Status", id="template-status-filter", aria_label="Review status"),
            rx.select.content(
                rx.select.item("All statuses", value="all"),
                *[rx.select.item(s.replace("_", " ").title(), value=s) for s in rules.TEMPLATE_STATUSES],
            ),
            value=rx.cond(TemplatesState.status_filter == "", "all", TemplatesState.status_filter),
            on_change=TemplatesState.filter_by_status,
        ),
        rx.select.root(
            rx.select.trigger(placeholder="Channel", id="template-channel-filter", aria_label="Channel"),
            rx.select.content(
                rx.select.item("All channels", value="all"),
                rx.foreach(TemplatesState.channels, lambda c: rx.select.item(c["name"], value=c["id"])),
            ),
            value=rx.cond(TemplatesState.channel_filter == "", "all", TemplatesState.channel_filter),
            on_change=TemplatesState.filter_by_channel,
        ),
        spacing="3",
        align="center",
        wrap="wrap",
    )


def _fact(label: str, value) -> rx.Component:
    return rx.vstack(
        rx.text(label, size="1", color=rx.color("gray", 10)), rx.text(value, size="2", weight="medium"), spacing="0"
    )


def _variable_row(v: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.code(v["name"])),
        rx.table.cell(v["component"]),
        rx.table.cell(rx.code(v["key"], variant="ghost", color_scheme="gray")),
        rx.table.cell(v["example"]),
    )


def _detail_dialog() -> rx.Component:
    d = TemplatesState.detail
    return rx.dialog.root(
        rx.dialog.content(
            rx.hstack(
                rx.dialog.title(d["name"], margin="0", id="template-detail-name"),
                template_status_badge(d["status"]),
                rx.spacer(),
                rx.dialog.close(
                    rx.icon_button(
                        rx.icon("x", size=16),
                        variant="ghost",
                        color_scheme="gray",
                        on_click=TemplatesState.close_detail,
                        aria_label="Close",
                    )
                ),
                align="center",
                width="100%",
                spacing="3",
            ),
            rx.cond(
                d["unsendable"] != "",
                rx.callout(d["unsendable"], icon="ban", color_scheme="red", size="1", margin_top="12px"),
                rx.cond(
                    d["sendable"] != "yes",
                    rx.callout(
                        "Only APPROVED templates can be sent; campaigns will not offer this one.",
                        icon="info",
                        color_scheme="amber",
                        size="1",
                        margin_top="12px",
                    ),
                ),
            ),
            rx.cond(
                d["status_reason"] != "",
                rx.text(d["status_reason"], size="2", color=rx.color("gray", 11), margin_top="8px"),
            ),
            rx.hstack(
                rx.vstack(
                    rx.grid(
                        _fact("Language", d["language_label"] + " (" + d["language"] + ")"),
                        _fact("Category", d["category"]),
                        _fact("Channel", d["channel"]),
                        _fact("Variables", rx.cond(d["parameter_format"] == "NAMED", "Named", "Numbered")),
                        _fact("Synced", rx.cond(d["synced"] != "", d["synced"], "written in Hubcast")),
                        _fact("Used by campaigns", d["campaigns"]),
                        _fact("Quality", quality_badge(d["quality"])),
                        columns="2",
                        spacing="4",
                        width="100%",
                    ),
                    rx.text("Variables", size="2", weight="medium", margin_top="8px"),
                    rx.cond(
                        TemplatesState.detail_variables.length() > 0,
                        data_table(
                            ["Variable", "Component", "Key", "Example"],
                            TemplatesState.detail_variables,
                            _variable_row,
                            "template-variables",
                        ),
                        rx.text(
                            "This template has no variables: every recipient gets the same text.",
                            size="2",
                            color=rx.color("gray", 10),
                            id="template-no-variables",
                        ),
                    ),
                    flex="1",
                    min_width="0",
                    spacing="3",
                ),
                rx.vstack(
                    rx.text("Preview with the example values", size="2", weight="medium", color=rx.color("gray", 11)),
                    whatsapp_preview(
                        TemplatesState.detail_preview,
                        "template-preview",
                        business=TemplatesState.detail["business"],
                        initials=TemplatesState.detail["initials"],
                    ),
                    width="340px",
                    min_width="300px",
                    spacing="2",
                ),
                spacing="5",
                align="start",
                width="100%",
                margin_top="16px",
            ),
            max_width="920px",
            id="template-detail",
        ),
        open=TemplatesState.detail_open,
        on_open_change=TemplatesState.detail_open_changed,
    )


def templates_page() -> rx.Component:
    return page_shell(
        "Templates",
        rx.cond(
            TemplatesState.channels.length() > 0,
            rx.hstack(
                rx.foreach(TemplatesState.channels, _channel_sync),
                spacing="3",
                wrap="wrap",
                width="100%",
                id="template-channels",
            ),
        ),
        _filters(),
        rx.cond(
            TemplatesState.loaded,
            rx.cond(
                TemplatesState.rows.length() > 0,
                rx.vstack(
                    data_table(
                        ["Name", "Language", "Category", "Status", "Quality", "Channel"],
                        TemplatesState.rows,
                        _template_row,
                        "templates-table",
                    ),
                    pager(
                        TemplatesState.page,
                        TemplatesState.pages,
                        TemplatesState.total,
                        TemplatesState.page_back,
                        TemplatesState.page_forward,
                        "templates",
                    ),
                    spacing="3",
                    width="100%",
                ),
                empty_state(
                    "layout-template",
                    "No templates",
                    rx.cond(
                        (TemplatesState.status_filter != "")
                        | (TemplatesState.channel_filter != "")
                        | (TemplatesState.search != ""),
                        "No template matches these filters.",
                        "WhatsApp templates appear here once a channel's templates are synced. "
                        "Only approved templates can be sent.",
                    ),
                    state_id="templates-empty",
                ),
            ),
            rx.center(rx.spinner(), padding="48px", width="100%"),
        ),
        _detail_dialog(),
        new_template_dialog(),
        actions=rx.cond(
            CAN_MANAGE,
            rx.button(
                rx.icon("plus", size=16),
                "New template",
                on_click=TemplatesState.open_new_template,
                id="new-template",
                size="3",
            ),
        ),
        subtitle="WhatsApp message templates; only approved ones can be sent",
    )
