"""The Segments page (SPEC S7) and the segment editor (/segments/new, /segments/[segment_id])."""

import reflex as rx

from components import routes
from components.common import data_table, empty_state, field_label
from components.layout import page_shell
from components.segment_builder import CAN_MANAGE, READ_ONLY, live_count, rule_builder
from state.segments import SegmentEditorState, SegmentsState

E = SegmentEditorState


def _segment_row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(
            rx.link(row["name"], href=routes.SEGMENTS + "/" + row["id"], weight="medium", class_name="segment-link")
        ),
        rx.table.cell(
            rx.vstack(rx.text(row["rules"], size="2"), rx.code(row["code"], size="1", variant="ghost"), spacing="1")
        ),
        rx.table.cell(rx.badge("match ", row["match"], variant="soft")),
        rx.table.cell(row["contacts"]),
        rx.table.cell(row["updated"]),
        rx.cond(
            CAN_MANAGE,
            rx.table.cell(
                rx.button(
                    "Delete",
                    size="1",
                    variant="soft",
                    color_scheme="red",
                    on_click=SegmentsState.ask_delete(row["id"]),
                    class_name="segment-delete",
                )
            ),
        ),
        align="center",
    )


def _delete_dialog(title: rx.Var, open_: rx.Var, on_cancel, on_confirm, confirm_id: str) -> rx.Component:
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title("Delete the segment ", title, "?"),
            rx.alert_dialog.description("The rules go away; no contact is deleted.", size="2"),
            rx.hstack(
                rx.button("Cancel", variant="soft", color_scheme="gray", on_click=on_cancel),
                rx.button("Delete segment", color_scheme="red", on_click=on_confirm, id=confirm_id),
                justify="end",
                width="100%",
                margin_top="16px",
            ),
        ),
        open=open_,
    )


def segments_page() -> rx.Component:
    headers = ["Name", "Rules", "Match", "Contacts", "Updated"]
    table = rx.cond(
        CAN_MANAGE,
        data_table([*headers, ""], SegmentsState.rows, _segment_row, "segments-table"),
        data_table(headers, SegmentsState.rows, _segment_row, "segments-table"),
    )
    return page_shell(
        "Segments",
        rx.cond(
            SegmentsState.loaded,
            rx.cond(
                SegmentsState.rows.length() > 0,
                table,
                empty_state(
                    "filter",
                    "No segments yet",
                    "A segment is a dynamic group defined by rules, like country = Australia. "
                    "Contacts added later that match are included automatically.",
                    state_id="segments-empty",
                ),
            ),
            rx.center(rx.spinner(), padding="48px", width="100%"),
        ),
        _delete_dialog(
            SegmentsState.delete_name,
            SegmentsState.delete_id != "",
            SegmentsState.cancel_delete,
            SegmentsState.confirm_delete,
            "segment-delete-confirm",
        ),
        actions=rx.cond(
            CAN_MANAGE,
            rx.link(
                rx.button(rx.icon("plus", size=16), "Create segment", size="3", id="create-segment"),
                href=routes.SEGMENT_NEW,
            ),
        ),
        subtitle="Dynamic groups defined by rules on contact fields",
    )


def _editor() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.link(
                rx.hstack(
                    rx.icon("arrow-left", size=14), rx.text("All segments", size="2"), align="center", spacing="1"
                ),
                href=routes.SEGMENTS,
                id="back-to-segments",
            ),
            rx.spacer(),
            rx.cond(READ_ONLY, rx.badge("Read only", variant="soft", color_scheme="gray", id="segment-read-only")),
            width="100%",
        ),
        rx.cond(
            E.return_to != "",
            rx.callout("Save the segment, and you'll go back to your campaign.", icon="corner-down-left", size="1"),
        ),
        rx.hstack(
            rx.vstack(
                rx.vstack(
                    field_label("Segment name", "segment-name"),
                    rx.input(
                        value=E.name,
                        on_change=E.set_name,
                        placeholder="Segment name",
                        id="segment-name",
                        width="100%",
                        size="3",
                        disabled=READ_ONLY,
                        debounce_timeout=300,
                    ),
                    spacing="1",
                    width="100%",
                ),
                rx.vstack(
                    field_label("Description (optional)", "segment-description"),
                    rx.input(
                        value=E.description,
                        on_change=E.set_description,
                        placeholder="Description (optional)",
                        id="segment-description",
                        width="100%",
                        disabled=READ_ONLY,
                        debounce_timeout=300,
                    ),
                    spacing="1",
                    width="100%",
                ),
                rule_builder(),
                rx.cond(
                    E.form_error != "",
                    rx.callout(
                        E.form_error,
                        icon="triangle-alert",
                        color_scheme="red",
                        size="1",
                        id="segment-form-error",
                        width="100%",
                    ),
                ),
                rx.cond(
                    CAN_MANAGE,
                    rx.hstack(
                        rx.cond(
                            E.segment_id != "",
                            rx.button(
                                "Delete", variant="soft", color_scheme="red", on_click=E.ask_delete, id="segment-delete"
                            ),
                        ),
                        rx.spacer(),
                        rx.button(
                            rx.icon("save", size=16),
                            rx.cond(E.segment_id == "", "Create segment", "Save"),
                            on_click=E.save,
                            id="segment-save",
                            size="3",
                        ),
                        width="100%",
                    ),
                ),
                flex="1",
                spacing="3",
                min_width="0",
            ),
            live_count(),
            align="start",
            width="100%",
            spacing="5",
        ),
        _delete_dialog(E.name, E.confirm_delete_open, E.cancel_delete, E.delete, "segment-editor-delete-confirm"),
        width="100%",
        spacing="4",
    )


def segment_editor_page() -> rx.Component:
    return page_shell(
        rx.cond(E.segment_id == "", "New segment", E.name),
        rx.cond(
            E.loaded,
            rx.cond(
                E.missing,
                empty_state(
                    "filter-x",
                    "This segment does not exist",
                    "It may have been deleted.",
                    rx.link("Back to segments", href=routes.SEGMENTS),
                    state_id="segment-missing",
                ),
                _editor(),
            ),
            rx.center(rx.spinner(), padding="48px", width="100%"),
        ),
        subtitle="Who is in it is decided by its rules, each time it is used",
    )
