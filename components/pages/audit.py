"""Audit log (admins): every sign-in, change and refusal, newest first."""

import reflex as rx

from components.common import data_table, empty_state, pager
from components.layout import page_shell
from state.audit import AuditState as S

HEADERS = ["When", "Who", "Action", "Outcome", "Target", "Details", "IP"]


def _row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(row["at"], size="2", white_space="nowrap")),
        rx.table.cell(rx.text(row["actor"], size="2")),
        rx.table.cell(rx.code(row["action"], size="1")),
        rx.table.cell(
            rx.badge(
                row["outcome"],
                variant="soft",
                color_scheme=rx.match(row["outcome"], ("ok", "green"), ("refused", "red"), "amber"),
            )
        ),
        rx.table.cell(rx.text(row["target"], size="2")),
        rx.table.cell(
            rx.text(row["detail"], size="1", color=rx.color("gray", 11), max_width="320px", overflow_wrap="anywhere")
        ),
        rx.table.cell(rx.text(row["ip"], size="1", color=rx.color("gray", 10))),
        id="audit-row-" + row["id"],
    )


def audit_page() -> rx.Component:
    body = rx.cond(
        S.loaded,
        rx.cond(
            S.rows.length() > 0,
            rx.vstack(
                data_table(HEADERS, S.rows, _row, "audit-table"),
                pager(S.page, S.pages, S.total, S.page_back, S.page_forward, "events"),
                width="100%",
                spacing="3",
            ),
            empty_state(
                "scroll-text",
                "Nothing recorded yet",
                "Sign-ins, changes and refusals appear here.",
                state_id="audit-empty",
            ),
        ),
        rx.center(rx.spinner(), padding="48px", width="100%"),
    )
    return page_shell("Audit log", body, subtitle="Who did what, newest first")
