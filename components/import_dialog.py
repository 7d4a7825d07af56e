"""The "Import contacts" dialog: upload → summary → target list → Confirm (SPEC S5, S14)."""

from __future__ import annotations

import reflex as rx

from components.common import CSV_BROWSER_MAX_BYTES, CSV_LIMIT_TEXT, field_label, labelled_radio
from state.contact_import import ContactImportState

S = ContactImportState
UPLOAD_ID = "contact-import"


def _stat(label: str, value: rx.Var, stat_id: str, color: str = "gray") -> rx.Component:
    return rx.vstack(
        rx.text(label, size="1", color=rx.color("gray", 10)),
        rx.text(value, size="5", weight="bold", color=rx.color(color, 11), id=stat_id),
        spacing="0",
        padding="10px 14px",
        border_radius="var(--radius-3)",
        background=rx.color(color, 2),
        border=f"1px solid {rx.color(color, 5)}",
        min_width="96px",
    )


def _upload_step() -> rx.Component:
    return rx.vstack(
        rx.upload.root(
            rx.vstack(
                rx.icon("file-up", size=28, color=rx.color("accent", 10)),
                rx.text("Drop a CSV file here, or click to choose one", weight="medium"),
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
                spacing="2",
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
            padding="28px",
            width="100%",
            cursor="pointer",
            background=rx.color("accent", 2),
        ),
        rx.cond(
            (S.progress > 0) & (S.progress < 100),
            rx.hstack(
                rx.spinner(size="1"),
                rx.text("Uploading…", size="1"),
                rx.progress(value=S.progress, flex="1"),
                width="100%",
                align="center",
                id="import-uploading",
            ),
        ),
        rx.callout(
            "Every contact you import must have agreed to receive your WhatsApp messages.",
            icon="shield-check",
            size="1",
            color_scheme="blue",
            width="100%",
        ),
        rx.text(
            "Numbers already in the base update their contact (blank cells change nothing); new numbers become "
            "new contacts, subscribed on WhatsApp. Columns first_name, last_name, email, country, city and "
            "language fill those fields; other columns become custom fields.",
            size="1",
            color=rx.color("gray", 10),
        ),
        width="100%",
        spacing="3",
    )


def _busy(text: rx.Var | str, busy_id: str) -> rx.Component:
    return rx.center(
        rx.vstack(
            rx.spinner(size="3"),
            rx.text(text, size="2", color=rx.color("gray", 11)),
            rx.text(S.file_name, size="1", color=rx.color("gray", 9)),
            align="center",
            spacing="3",
        ),
        padding="40px",
        width="100%",
        id=busy_id,
    )


def _invalid_table() -> rx.Component:
    return rx.vstack(
        rx.text("Invalid rows (not imported)", size="2", weight="medium"),
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
                            rx.table.cell(r["line"]), rx.table.cell(rx.code(r["value"])), rx.table.cell(r["reason"])
                        ),
                    )
                ),
                size="1",
                variant="surface",
                width="100%",
                id="import-invalid-table",
            ),
            max_height="180px",
            overflow_y="auto",
            width="100%",
        ),
        rx.cond(S.invalid_more > 0, rx.text("…and ", S.invalid_more, " more", size="1", color=rx.color("gray", 10))),
        width="100%",
        spacing="2",
    )


def _target_picker() -> rx.Component:
    return rx.vstack(
        rx.text("Add the imported contacts to a list", size="2", weight="medium", id="import-target-label"),
        rx.radio_group.root(
            rx.hstack(
                labelled_radio("none", "No list", "import-target-none"),
                labelled_radio("existing", "An existing list", "import-target-existing"),
                labelled_radio("new", "A new list", "import-target-new"),
                spacing="4",
                align="center",
            ),
            value=S.target,
            on_change=S.set_target,
            id="import-target",
            aria_labelledby="import-target-label",
        ),
        rx.cond(
            S.target == "existing",
            rx.vstack(
                field_label("List", "import-list-select"),
                rx.select.root(
                    rx.select.trigger(
                        placeholder="Choose a list",
                        width="100%",
                        id="import-list-select",
                        aria_labelledby="import-list-select-label",
                    ),
                    rx.select.content(rx.foreach(S.list_options, lambda o: rx.select.item(o["name"], value=o["id"]))),
                    value=S.target_list_id,
                    on_change=S.set_target_list,
                ),
                width="100%",
                spacing="1",
            ),
        ),
        rx.cond(
            S.target == "new",
            rx.vstack(
                field_label("New list name", "import-new-list-name"),
                rx.input(
                    value=S.new_list_name,
                    on_change=S.set_new_list_name,
                    placeholder="New list name",
                    id="import-new-list-name",
                    width="100%",
                    debounce_timeout=200,
                ),
                width="100%",
                spacing="1",
            ),
        ),
        width="100%",
        spacing="2",
    )


def _summary_step() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.icon("file-check", size=16),
            rx.text(S.file_name, weight="medium", size="2"),
            rx.text(
                "· ",
                S.summary["size"],
                " · separator: ",
                S.summary["delimiter"],
                size="2",
                color=rx.color("gray", 10),
                id="import-delimiter",
            ),
            align="center",
            spacing="2",
            wrap="wrap",
        ),
        rx.hstack(
            _stat("Rows", S.summary["rows"], "import-rows"),
            _stat("New contacts", S.summary["new"], "import-new", "green"),
            _stat("Updated", S.summary["updated"], "import-updated", "blue"),
            _stat("Invalid", S.summary["invalid"], "import-invalid", "red"),
            _stat("Duplicates", S.summary["duplicates"], "import-duplicates", "amber"),
            spacing="2",
            wrap="wrap",
        ),
        rx.text(
            "Columns: ",
            rx.code(S.summary["columns"]),
            " · fields: ",
            S.summary["fields"],
            " · custom fields: ",
            S.summary["custom"],
            size="1",
            color=rx.color("gray", 10),
        ),
        rx.cond(
            S.summary["ignored"] != "",
            rx.text(
                "Ignored columns (their names cannot be field names): ",
                S.summary["ignored"],
                size="1",
                color=rx.color("amber", 11),
            ),
        ),
        rx.cond(S.invalid_rows.length() > 0, _invalid_table()),
        rx.divider(),
        _target_picker(),
        rx.text("Nothing has been written yet. Confirm to import.", size="1", color=rx.color("gray", 10)),
        width="100%",
        spacing="3",
    )


def _done_step() -> rx.Component:
    return rx.vstack(
        rx.callout(
            rx.text(
                "Imported: ",
                S.result["created"],
                " new contact(s), ",
                S.result["updated"],
                " updated, ",
                S.result["invalid"],
                " invalid row(s) skipped.",
                rx.cond(
                    S.result["list_name"] != "",
                    rx.text.span(" ", S.result["added"], " added to the list ", S.result["list_name"], "."),
                ),
                id="import-result",
            ),
            icon="circle-check",
            color_scheme="green",
            width="100%",
        ),
        width="100%",
    )


def _buttons() -> rx.Component:
    return rx.hstack(
        rx.cond(
            S.step == "summary",
            rx.button(
                "Choose another file", variant="ghost", type="button", on_click=S.start_over, id="import-start-over"
            ),
        ),
        rx.spacer(),
        rx.button(
            rx.cond(S.step == "done", "Close", "Cancel"),
            variant="soft",
            color_scheme="gray",
            on_click=S.close_import,
            id="import-close",
            disabled=(S.step == "checking") | (S.step == "importing"),
        ),
        rx.cond(
            S.step == "summary",
            rx.button(rx.icon("check", size=16), "Confirm import", on_click=S.confirm_import, id="import-confirm"),
        ),
        width="100%",
        align="center",
    )


def import_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Import contacts"),
            rx.dialog.description(
                "Add or update contacts in the base from a CSV file.",
                size="2",
                color=rx.color("gray", 10),
                margin_bottom="12px",
            ),
            rx.match(
                S.step,
                (
                    "checking",
                    _busy(
                        rx.cond(S.progress < 100, rx.text("Uploading… ", S.progress, "%"), "Checking the file…"),
                        "import-checking",
                    ),
                ),
                ("summary", _summary_step()),
                ("importing", _busy("Importing… the base is updated in one go, or not at all.", "import-importing")),
                ("done", _done_step()),
                _upload_step(),
            ),
            rx.cond(
                S.error != "",
                rx.callout(
                    S.error,
                    icon="triangle-alert",
                    color_scheme="red",
                    size="1",
                    id="import-error",
                    width="100%",
                    margin_top="12px",
                ),
            ),
            rx.box(_buttons(), margin_top="16px", width="100%"),
            max_width="720px",
        ),
        open=S.import_open,
        on_open_change=S.close_import,  # Escape (or a click outside) closes it (not while a file is checked or imported)
    )
