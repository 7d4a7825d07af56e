"""All Campaigns (SPEC S3): empty state with "Start a campaign", else the campaigns table."""

import reflex as rx

from app.domain.campaign_status import CAMPAIGN_STATUSES, STATUS_LABELS
from app.domain.time_zones import TIMEZONES
from components import routes
from components.common import empty_state, field_label, pager, search_box, status_badge, status_filter
from components.health_banner import worker_paused_banner
from components.layout import page_shell
from components.progress import campaign_progress
from state.campaigns import CampaignsState

# (value, the name users know) for the status filter; "all" shows every campaign.
STATUS_OPTIONS = [("all", "All statuses")] + [(s, STATUS_LABELS[s]) for s in CAMPAIGN_STATUSES]
# (visible header, sort key of app/services/campaigns/listing.py SORT_KEYS); the last column is the menu.
COLUMNS = [
    ("Name", "name"),
    ("Status", "status"),
    ("Channel", "channel"),
    ("Recipients", "recipients"),
    ("Progress", "progress"),
    ("Scheduled or sent", "when"),
    ("Created by", "created_by"),
]


def _name(row: rx.Var) -> rx.Component:
    # Drafts open in the wizard (another page); everything else opens its live results.
    return rx.cond(
        row["status"] == "draft",
        rx.link(
            rx.text(row["name"], weight="medium"),
            href=routes.campaign_edit(row["id"]),
            id="campaign-link-" + row["id"],
            underline="hover",
        ),
        rx.link(
            rx.text(row["name"], weight="medium"),
            href=routes.CAMPAIGNS + "/" + row["id"],
            id="campaign-link-" + row["id"],
            underline="hover",
        ),
    )


def _item(label: str, icon: str, on_click, item_id: rx.Var, color: str = "") -> rx.Component:
    extra = {"color": color} if color else {}
    return rx.menu.item(
        rx.hstack(rx.icon(icon, size=14), rx.text(label), spacing="2", align="center"),
        on_click=on_click,
        id=item_id,
        **extra,
    )


def _actions(row: rx.Var) -> rx.Component:
    status, cid = row["status"], row["id"]
    return rx.menu.root(
        rx.menu.trigger(
            rx.icon_button(
                rx.icon("ellipsis", size=16),
                variant="ghost",
                size="1",
                id="campaign-actions-" + cid,
                aria_label="Actions",
            )
        ),
        rx.menu.content(
            rx.cond(
                status == "draft",
                _item("Edit", "pencil", rx.redirect(routes.campaign_edit(cid)), "campaign-edit-" + cid),
            ),
            _item("Duplicate", "copy", CampaignsState.duplicate_campaign(cid), "campaign-duplicate-" + cid),
            rx.cond(
                status == "scheduled",
                rx.fragment(
                    _item(
                        "Reschedule",
                        "calendar-clock",
                        CampaignsState.open_reschedule(cid),
                        "campaign-reschedule-" + cid,
                    ),
                    _item("Cancel", "ban", CampaignsState.cancel_campaign(cid), "campaign-cancel-" + cid, "red"),
                ),
            ),
            rx.cond(
                status == "sending",
                _item("Pause", "pause", CampaignsState.pause_campaign(cid), "campaign-pause-" + cid),
            ),
            rx.cond(
                status == "paused",
                rx.fragment(
                    _item("Resume", "play", CampaignsState.resume_campaign(cid), "campaign-resume-" + cid),
                    _item("Cancel", "ban", CampaignsState.cancel_campaign(cid), "campaign-cancel-" + cid, "red"),
                ),
            ),
            rx.cond(
                status == "draft",
                _item("Delete draft", "trash-2", CampaignsState.open_delete(cid), "campaign-delete-" + cid, "red"),
            ),
        ),
    )


def _delete_dialog() -> rx.Component:
    S = CampaignsState
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title("Delete this draft?"),
            rx.alert_dialog.description(
                rx.text("“", S.delete_name, "” will be deleted. This cannot be undone."), size="2"
            ),
            rx.hstack(
                rx.button(
                    "Keep it", variant="soft", color_scheme="gray", on_click=S.close_delete, id="campaign-delete-cancel"
                ),
                rx.button("Delete draft", color_scheme="red", on_click=S.confirm_delete, id="campaign-delete-confirm"),
                justify="end",
                spacing="3",
                margin_top="16px",
            ),
        ),
        open=S.delete_id != "",
    )


def _reschedule_dialog() -> rx.Component:
    S = CampaignsState
    label = lambda text: rx.text(text, size="2", weight="medium")
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Reschedule “", S.reschedule_name, "”"),
            rx.vstack(
                label("Time zone"),
                rx.select(
                    TIMEZONES, value=S.reschedule_tz, on_change=S.set_reschedule_tz, width="100%", id="reschedule-tz"
                ),
                rx.hstack(
                    rx.vstack(
                        label("Date"),
                        rx.input(
                            type="date", value=S.reschedule_date, on_change=S.set_reschedule_date, id="reschedule-date"
                        ),
                        spacing="1",
                    ),
                    rx.vstack(
                        label("Time"),
                        rx.input(
                            type="time", value=S.reschedule_time, on_change=S.set_reschedule_time, id="reschedule-time"
                        ),
                        spacing="1",
                    ),
                    spacing="3",
                ),
                rx.cond(
                    S.reschedule_note != "", rx.text(S.reschedule_note, size="2", weight="medium", id="reschedule-note")
                ),
                rx.callout(
                    "All contacts receive the message at the same moment, whatever their own time zone.",
                    icon="clock",
                    size="1",
                    color_scheme="blue",
                    width="100%",
                ),
                rx.cond(
                    S.reschedule_error != "",
                    rx.callout(
                        S.reschedule_error,
                        icon="circle-alert",
                        size="1",
                        color_scheme="red",
                        width="100%",
                        id="reschedule-error",
                    ),
                ),
                spacing="2",
                width="100%",
            ),
            rx.hstack(
                rx.button(
                    "Cancel", variant="soft", color_scheme="gray", on_click=S.close_reschedule, id="reschedule-cancel"
                ),
                rx.button(
                    rx.icon("calendar-clock", size=14),
                    "Reschedule",
                    on_click=S.confirm_reschedule,
                    id="reschedule-confirm",
                ),
                justify="end",
                spacing="3",
                margin_top="16px",
            ),
            max_width="480px",
        ),
        open=S.reschedule_id != "",
    )


def _sort_header(label: str, key: str) -> rx.Component:
    """A column header that sorts: a button named by its label, the header cell's aria-sort says the order."""
    S = CampaignsState
    active = S.sort == key
    ascending = S.direction == "asc"
    return rx.table.column_header_cell(
        rx.button(
            label,
            rx.cond(
                active,
                rx.cond(ascending, rx.icon("arrow-up", size=12), rx.icon("arrow-down", size=12)),
                rx.icon("arrow-up-down", size=12, opacity="0.4"),
            ),
            variant="ghost",
            color_scheme="gray",
            size="1",
            on_click=S.sort_by(key),
            id=f"sort-{key}",
            style={"font_weight": "600", "white_space": "nowrap"},
        ),
        aria_sort=rx.cond(active, rx.cond(ascending, "ascending", "descending"), "none"),
    )


def _campaigns_table() -> rx.Component:
    return rx.box(
        rx.table.root(
            rx.table.header(
                rx.table.row(
                    *[_sort_header(label, key) for label, key in COLUMNS],
                    # The row menus' column: named for screen readers, nothing to show.
                    rx.table.column_header_cell(aria_label="Actions"),
                )
            ),
            rx.table.body(rx.foreach(CampaignsState.rows, _row)),
            variant="surface",
            size="2",
            width="100%",
            id="campaigns-table",
        ),
        width="100%",
        overflow_x="auto",
    )


def _status_filter() -> rx.Component:
    S = CampaignsState
    return status_filter("campaign-status-filter", STATUS_OPTIONS, S.status_filter, S.set_status_filter)


def _date_filter(label: str, value: rx.Var, on_change, input_id: str) -> rx.Component:
    return rx.hstack(
        field_label(label, input_id),
        rx.input(type="date", value=value, on_change=on_change, id=input_id),
        spacing="2",
        align="center",
    )


def _filters() -> rx.Component:
    S = CampaignsState
    return rx.vstack(
        rx.hstack(
            search_box(S.search, S.set_search, "Search campaigns", "campaign-search"),
            _status_filter(),
            _date_filter("From", S.date_from, S.set_date_from, "campaign-date-from"),
            _date_filter("To", S.date_to, S.set_date_to, "campaign-date-to"),
            rx.cond(
                (S.date_from != "") | (S.date_to != ""),
                rx.button(
                    rx.icon("x", size=14),
                    "Clear dates",
                    variant="soft",
                    color_scheme="gray",
                    size="2",
                    on_click=S.clear_dates,
                    id="campaign-clear-dates",
                ),
            ),
            rx.spacer(),
            # Shown while the page refreshes itself (something is sending or still receiving statuses).
            rx.cond(
                S.live,
                rx.badge(rx.icon("radio", size=12), "Live", color_scheme="grass", variant="soft", id="campaigns-live"),
            ),
            width="100%",
            align="center",
            wrap="wrap",
        ),
        rx.cond(
            S.filter_error != "",
            rx.callout(
                S.filter_error,
                icon="circle-alert",
                color_scheme="red",
                size="1",
                id="campaign-filter-error",
                role="alert",
            ),
        ),
        width="100%",
        spacing="2",
    )


def _row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(_name(row)),
        rx.table.cell(status_badge(row["status"], row["status_label"])),
        rx.table.cell(row["channel"]),
        # The audience is frozen when a campaign starts: before that there is no recipient count to show.
        rx.table.cell(
            rx.cond((row["status"] == "draft") | (row["status"] == "scheduled"), "—", row["recipients"]),
            id="campaign-recipients-" + row["id"],
        ),
        rx.table.cell(campaign_progress(row, "campaign-" + row["id"])),
        rx.table.cell(row["when"]),
        rx.table.cell(row["created_by"]),
        rx.table.cell(_actions(row)),
        id="campaign-row-" + row["id"],
    )


def _start_button(label: str, button_id: str) -> rx.Component:
    return rx.link(rx.button(rx.icon("plus", size=16), label, id=button_id, size="3"), href=routes.CAMPAIGN_NEW)


def campaigns_page() -> rx.Component:
    table = rx.vstack(
        _filters(),
        _campaigns_table(),
        pager(
            CampaignsState.page,
            CampaignsState.pages,
            CampaignsState.total,
            CampaignsState.prev_page,
            CampaignsState.next_page,
            "campaigns",
        ),
        _delete_dialog(),
        _reschedule_dialog(),
        width="100%",
        spacing="3",
    )
    return page_shell(
        "All Campaigns",
        worker_paused_banner(),
        rx.cond(
            CampaignsState.loaded,
            rx.cond(
                CampaignsState.any_campaign,
                table,
                empty_state(
                    "megaphone",
                    "No campaigns yet",
                    "Send a WhatsApp template message to a contact list, a segment or a CSV file, "
                    "and follow every delivery live.",
                    _start_button("Start a campaign", "start-campaign"),
                ),
            ),
            rx.center(rx.spinner(), padding="48px", width="100%"),
        ),
        actions=rx.cond(CampaignsState.any_campaign, _start_button("Create", "create-campaign")),
        subtitle="Social Messaging · WhatsApp",
    )
