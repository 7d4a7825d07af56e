"""All Campaigns (SPEC S3): empty state with "Start a campaign", else the campaigns table."""

import reflex as rx

from components.common import data_table, empty_state, pager, search_box, status_badge
from components.layout import page_shell
from components.progress import campaign_progress
from state.campaigns import CampaignsState

STATUS_OPTIONS = ["all", "draft", "scheduled", "sending", "paused", "sent", "failed", "cancelled"]


def _name(row: rx.Var) -> rx.Component:
    # Drafts open in the wizard (another page); everything else opens its live results.
    return rx.cond(
        row["status"] == "draft",
        rx.text(row["name"], weight="medium"),
        rx.link(rx.text(row["name"], weight="medium"), href="/campaigns/" + row["id"],
                id="campaign-link-" + row["id"], underline="hover"),
    )


def _row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(_name(row)),
        rx.table.cell(status_badge(row["status"])),
        rx.table.cell(row["channel"]),
        rx.table.cell(row["recipients"], id="campaign-recipients-" + row["id"]),
        rx.table.cell(campaign_progress(row, "campaign-" + row["id"])),
        rx.table.cell(row["when"]),
        rx.table.cell(row["created_by"]),
        id="campaign-row-" + row["id"],
    )


def _start_button(label: str, button_id: str) -> rx.Component:
    # The wizard arrives with the campaign-wizard issue; until then the button says so instead of failing.
    return rx.button(rx.icon("plus", size=16), label, id=button_id, size="3",
                     on_click=rx.toast.info("The campaign wizard is coming in the next release."))


def campaigns_page() -> rx.Component:
    table = rx.vstack(
        rx.hstack(
            search_box(CampaignsState.search, CampaignsState.set_search, "Search campaigns", "campaign-search"),
            rx.select(STATUS_OPTIONS, value=rx.cond(CampaignsState.status_filter == "", "all",
                                                    CampaignsState.status_filter),
                      on_change=CampaignsState.set_status_filter, id="campaign-status-filter"),
            rx.spacer(),
            # Shown while the page refreshes itself (something is sending or still receiving statuses).
            rx.cond(CampaignsState.live, rx.badge(rx.icon("radio", size=12), "Live", color_scheme="grass",
                                                  variant="soft", id="campaigns-live")),
            width="100%", align="center",
        ),
        data_table(["Name", "Status", "Channel", "Recipients", "Progress", "Scheduled or sent",
                    "Created by"], CampaignsState.rows, _row, "campaigns-table"),
        pager(CampaignsState.page, CampaignsState.pages, CampaignsState.total, CampaignsState.prev_page,
              CampaignsState.next_page, "campaigns"),
        width="100%", spacing="3",
    )
    return page_shell(
        "All Campaigns",
        rx.cond(
            CampaignsState.loaded,
            rx.cond(
                CampaignsState.any_campaign,
                table,
                empty_state("megaphone", "No campaigns yet",
                            "Send a WhatsApp template message to a contact list, a segment or a CSV file, "
                            "and follow every delivery live.",
                            _start_button("Start a campaign", "start-campaign")),
            ),
            rx.center(rx.spinner(), padding="48px", width="100%"),
        ),
        actions=rx.cond(CampaignsState.any_campaign, _start_button("Create", "create-campaign")),
        subtitle="Social Messaging · WhatsApp",
    )
