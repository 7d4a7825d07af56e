"""The Segments page."""

import reflex as rx

from components.common import empty_state, overview_page
from state.segments import SegmentsState


def _segment_row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(rx.text(row["name"], weight="medium")),
        rx.table.cell(rx.code(row["rules"])),
        rx.table.cell(rx.badge("match ", row["match"], variant="soft")),
        rx.table.cell(row["updated"]),
    )


def segments_page() -> rx.Component:
    return overview_page(
        "Segments", "Dynamic groups defined by rules on contact fields", SegmentsState,
        ["Name", "Rules", "Match", "Updated"], _segment_row, "segments-table",
        empty_state("filter", "No segments yet",
                    "A segment is a dynamic group defined by rules, like country = Australia. "
                    "Contacts added later that match are included automatically.", state_id="segments-empty"),
    )
