"""Wizard step 1, "Campaign setup": name, audience (list / segment / file), channel (SPEC S9, S13–S15)."""

from __future__ import annotations

import reflex as rx

from components import routes
from components.common import CSV_BROWSER_MAX_BYTES, CSV_LIMIT_TEXT, field_label, labelled_radio
from state.base import AppState
from state.wizard import WizardState as W
from state.wizard_setup import WizardSetupState as S

UPLOAD_ID = "wizard-csv"


def _select(options: rx.Var, value: rx.Var, on_change, placeholder: str, select_id: str, label: str) -> rx.Component:
    return rx.vstack(
        field_label(label, select_id),
        _select_root(options, value, on_change, placeholder, select_id),
        width="100%",
        spacing="1",
    )


def _select_root(options: rx.Var, value: rx.Var, on_change, placeholder: str, select_id: str) -> rx.Component:
    return rx.select.root(
        # Named by its visible label (field_label ids it `<select id>-label`); the chosen value stays visible.
        rx.select.trigger(placeholder=placeholder, width="100%", id=select_id, aria_labelledby=select_id + "-label"),
        rx.select.content(rx.foreach(options, lambda o: rx.select.item(o["name"], value=o["id"]))),
        value=value,
        on_change=on_change,
    )


def _return_to() -> rx.Var:
    return rx.cond(W.campaign_id != "", routes.campaign_edit(W.campaign_id), routes.CAMPAIGN_NEW)


def _create_link(label: str, href: rx.Var, link_id: str) -> rx.Component:
    # Admin and advanced users only; the Lists/Segments pages refuse a basic user on the server anyway.
    return rx.cond(
        AppState.can_manage_audiences,
        rx.link(
            rx.hstack(rx.icon("plus", size=14), rx.text(label, size="2"), spacing="1", align="center"),
            href=href,
            id=link_id,
        ),
    )


def _radio(value: str, label: str, item_id: str) -> rx.Component:
    return labelled_radio(value, label, item_id)


def _stat(label: str, value: rx.Var, stat_id: str, color: str = "gray") -> rx.Component:
    return rx.vstack(
        rx.text(label, size="1", color=rx.color("gray", 10)),
        rx.text(value, size="4", weight="bold", color=rx.color(color, 11), id=stat_id),
        spacing="0",
        padding="8px 12px",
        border_radius="var(--radius-3)",
        background=rx.color(color, 2),
        border=f"1px solid {rx.color(color, 5)}",
        min_width="92px",
    )


def _file_upload() -> rx.Component:
    return rx.vstack(
        rx.upload.root(
            rx.vstack(
                rx.icon("file-up", size=24, color=rx.color("accent", 10)),
                rx.text("Drop a CSV file here, or click to browse", weight="medium", size="2"),
                rx.text(
                    "Comma or semicolon separated · a header row · a phone (or id) column with country codes "
                    "· " + CSV_LIMIT_TEXT,
                    size="1",
                    color=rx.color("gray", 10),
                    text_align="center",
                ),
                # The drop zone's one keyboard stop, named: a click inside the zone opens the file chooser.
                rx.button(
                    rx.icon("folder-open", size=14), "Choose a CSV file", type="button", variant="soft", size="1"
                ),
                align="center",
                spacing="1",
            ),
            id=UPLOAD_ID,
            no_keyboard=True,  # the button inside is the keyboard's way in (the zone itself has no name)
            multiple=False,
            max_files=1,
            max_size=CSV_BROWSER_MAX_BYTES,
            accept={"text/csv": [".csv"], "application/vnd.ms-excel": [".csv"]},
            on_drop=S.handle_upload(rx.upload_files(upload_id=UPLOAD_ID, on_upload_progress=S.upload_progress)),
            border=f"1px dashed {rx.color('accent', 8)}",
            border_radius="var(--radius-3)",
            padding="20px",
            width="100%",
            cursor="pointer",
            background=rx.color("accent", 2),
        ),
        rx.cond(
            S.csv_step == "checking",
            rx.hstack(
                rx.spinner(size="1"),
                rx.text("Checking the file… ", S.csv_progress, "%", size="1"),
                rx.progress(value=S.csv_progress, flex="1"),
                width="100%",
                align="center",
                id="wizard-csv-checking",
            ),
        ),
        width="100%",
        spacing="2",
    )


def _file_summary() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.icon("file-check", size=16),
            rx.text(S.csv_summary["file"], weight="medium", size="2"),
            rx.text(
                "· separator: ",
                S.csv_summary["delimiter"],
                size="2",
                color=rx.color("gray", 10),
                id="wizard-csv-delimiter",
            ),
            rx.spacer(),
            rx.button(
                "Choose another file", variant="ghost", size="1", on_click=S.replace_file, id="wizard-csv-replace"
            ),
            align="center",
            spacing="2",
            width="100%",
            wrap="wrap",
        ),
        rx.hstack(
            _stat("Imported audience", S.csv_summary["rows"], "wizard-csv-rows"),
            _stat("Estimated reach", S.csv_summary["reach"], "wizard-csv-reach", "green"),
            _stat("Invalid format", S.csv_summary["invalid"], "wizard-csv-invalid", "red"),
            _stat("Duplicates", S.csv_summary["duplicates"], "wizard-csv-duplicates", "amber"),
            spacing="2",
            wrap="wrap",
        ),
        rx.text(
            "Columns: ",
            rx.code(S.csv_summary["columns"], id="wizard-csv-columns"),
            size="1",
            color=rx.color("gray", 10),
        ),
        rx.cond(
            S.invalid_rows.length() > 0,
            rx.vstack(
                rx.hstack(
                    rx.text("Invalid rows (not sent)", size="2", weight="medium"),
                    rx.spacer(),
                    rx.button(
                        rx.icon("download", size=14),
                        "Download invalid rows",
                        size="1",
                        variant="soft",
                        on_click=S.download_invalid,
                        id="wizard-csv-download-invalid",
                    ),
                    width="100%",
                    align="center",
                ),
                rx.box(
                    rx.table.root(
                        rx.table.header(
                            rx.table.row(
                                rx.table.column_header_cell("Line"),
                                rx.table.column_header_cell("Value"),
                                rx.table.column_header_cell("Reason"),
                            )
                        ),
                        rx.table.body(
                            rx.foreach(
                                S.invalid_rows,
                                lambda r: rx.table.row(
                                    rx.table.cell(r["line"]),
                                    rx.table.cell(rx.code(r["value"])),
                                    rx.table.cell(r["reason"]),
                                ),
                            )
                        ),
                        size="1",
                        variant="surface",
                        width="100%",
                        id="wizard-csv-invalid-table",
                    ),
                    max_height="160px",
                    overflow_y="auto",
                    width="100%",
                ),
                width="100%",
                spacing="2",
            ),
        ),
        width="100%",
        spacing="3",
    )


def _file_import() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.button(
                rx.icon("download", size=14),
                "Download a template",
                variant="soft",
                size="1",
                on_click=S.download_sample,
                id="wizard-download-template",
            ),
            rx.text("A sample CSV with phone, first_name, last_name, city.", size="1", color=rx.color("gray", 10)),
            align="center",
            spacing="2",
        ),
        rx.callout(
            "Every contact in the file must have agreed to receive your WhatsApp messages.",
            icon="shield-check",
            size="1",
            color_scheme="blue",
            width="100%",
            id="wizard-consent",
        ),
        rx.cond(S.csv_step == "done", _file_summary(), _file_upload()),
        rx.cond(
            S.csv_error != "",
            rx.callout(
                S.csv_error, icon="triangle-alert", color_scheme="red", size="1", width="100%", id="wizard-csv-error"
            ),
        ),
        width="100%",
        spacing="3",
    )


def _derived_file() -> rx.Component:
    return rx.callout(
        "A frozen copy of recipients of an earlier campaign (made by “Send again to…”). It cannot be changed "
        "here; choose a contact list or a segment to send to another audience.",
        icon="copy",
        size="1",
        color_scheme="blue",
        width="100%",
        id="wizard-derived-file",
    )


def setup_step() -> rx.Component:
    return rx.vstack(
        rx.vstack(
            field_label("Campaign name", "wizard-name"),
            rx.input(
                value=W.name,
                on_change=S.set_name,
                on_blur=S.save_name,
                placeholder="e.g. Spring sale",
                id="wizard-name",
                width="100%",
                max_length=200,
            ),
            width="100%",
            spacing="1",
        ),
        rx.vstack(
            rx.text("Audience", size="2", weight="medium", id="wizard-audience-kind-label"),
            rx.radio_group.root(
                rx.vstack(
                    _radio("list", "Select from contact lists", "wizard-audience-list"),
                    _radio("segment", "Select from a contact segment", "wizard-audience-segment"),
                    rx.cond(
                        AppState.can_manage_audiences,
                        _radio("csv", "Import from a file", "wizard-audience-csv"),
                        # A basic user's "send again to…" draft: its frozen file, kept (never another one).
                        rx.cond(
                            S.summary["derived"] == "yes",
                            _radio("csv", "Recipients of an earlier campaign", "wizard-audience-derived"),
                        ),
                    ),
                    spacing="2",
                ),
                value=W.audience_kind,
                on_change=S.set_audience_kind,
                id="wizard-audience-kind",
                aria_labelledby="wizard-audience-kind-label",
            ),
            rx.match(
                W.audience_kind,
                (
                    "list",
                    rx.hstack(
                        rx.box(
                            _select(
                                S.list_options, W.list_id, S.set_list, "Choose a list", "wizard-list", "Contact list"
                            ),
                            flex="1",
                        ),
                        _create_link(
                            "Create new list", routes.LISTS + "?return_to=" + _return_to(), "wizard-create-list"
                        ),
                        width="100%",
                        align="end",
                        spacing="3",
                    ),
                ),
                (
                    "segment",
                    rx.hstack(
                        rx.box(
                            _select(
                                S.segment_options,
                                W.segment_id,
                                S.set_segment,
                                "Choose a segment",
                                "wizard-segment",
                                "Contact segment",
                            ),
                            flex="1",
                        ),
                        _create_link(
                            "Create new segment",
                            routes.SEGMENT_NEW + "?return_to=" + _return_to(),
                            "wizard-create-segment",
                        ),
                        width="100%",
                        align="end",
                        spacing="3",
                    ),
                ),
                ("csv", rx.cond(AppState.can_manage_audiences, _file_import(), _derived_file())),
                rx.fragment(),
            ),
            width="100%",
            spacing="2",
        ),
        rx.vstack(
            rx.cond(
                S.channel_options.length() > 0,
                _select(
                    S.channel_options,
                    W.channel_id,
                    S.set_channel,
                    "Choose a WhatsApp channel",
                    "wizard-channel",
                    "Channel",
                ),
                rx.callout(
                    "No connected WhatsApp channel. An admin connects one on the Channels page.",
                    icon="plug",
                    size="1",
                    color_scheme="amber",
                    width="100%",
                ),
            ),
            rx.text(
                "Only connected WhatsApp channels (and the Sandbox) can send template messages.",
                size="1",
                color=rx.color("gray", 10),
            ),
            width="100%",
            spacing="1",
        ),
        width="100%",
        spacing="5",
    )


def audience_card() -> rx.Component:
    """The audience summary that stays on the right during step 1."""
    row = lambda label, value, row_id: rx.hstack(
        rx.text(label, size="2", color=rx.color("gray", 11)),
        rx.spacer(),
        rx.text(value, size="2", weight="bold", id=row_id),
        width="100%",
    )
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.icon("users", size=16),
                rx.text("Audience summary", weight="bold", size="2"),
                align="center",
                spacing="2",
            ),
            rx.cond(
                S.summary.contains("error"),
                rx.text(S.summary["error"], color=rx.color("red", 11), size="2"),
                rx.cond(
                    S.summary.contains("name"),
                    rx.vstack(
                        rx.text(S.summary["name"], size="2", weight="medium", id="wizard-summary-name"),
                        row(
                            rx.cond(S.summary["kind"] == "csv", "Rows in the file", "Contacts"),
                            S.summary["total"],
                            "wizard-summary-total",
                        ),
                        row("Estimated reach on WhatsApp", S.summary["reach"], "wizard-summary-reach"),
                        rx.cond(
                            S.summary["kind"] == "csv",
                            row("Invalid format", S.summary["invalid"], "wizard-summary-invalid"),
                            rx.fragment(
                                row(
                                    "Only on channels this flow cannot reach",
                                    S.summary["not_reachable"],
                                    "wizard-summary-not-reachable",
                                ),
                                row(
                                    "Unsubscribed from WhatsApp",
                                    S.summary["unsubscribed"],
                                    "wizard-summary-unsubscribed",
                                ),
                            ),
                        ),
                        width="100%",
                        spacing="2",
                    ),
                    rx.text("Choose an audience to see who it reaches.", size="2", color=rx.color("gray", 10)),
                ),
            ),
            width="100%",
            spacing="3",
        ),
        width="100%",
        id="wizard-audience-card",
    )
