"""The Reflex entry module (rxconfig app_name="app"): pages, guards, theme and extra HTTP routes."""

import reflex as rx

from app.http_api import build_http_api
from app.security_headers import security_headers
from components import routes
from components.pages.audit import audit_page
from components.pages.campaign_detail import campaign_detail_page
from components.pages.campaigns import campaigns_page
from components.pages.channels import channels_page
from components.pages.contacts import contacts_page
from components.pages.dashboard import dashboard_page
from components.pages.lists import list_detail_page, lists_page
from components.pages.login import login_page
from components.pages.segments import segment_editor_page, segments_page
from components.pages.templates import templates_page
from components.pages.users import users_page
from components.pages.wizard import wizard_page
from state.audit import AuditState
from state.base import AppState
from state.campaign_detail import CampaignDetailState
from state.campaigns import CampaignsState
from state.channels import ChannelsState
from state.contacts import ContactsState
from state.dashboard import DashboardState
from state.lists import ListDetailState, ListsState
from state.login import LoginState
from state.segments import SegmentEditorState, SegmentsState
from state.templates import TemplatesState
from state.users import UsersState
from state.wizard import WizardState

app = rx.App(
    # Our HTTP routes, then the security headers around everything (pages, /_event, /_upload, /webhooks).
    api_transformer=[build_http_api(), security_headers],
    style={"font_family": "Inter, system-ui, -apple-system, 'Segoe UI', sans-serif"},
    stylesheets=["/a11y.css"],  # text-safe contrast and visible focus on every page (SPEC S20)
    # assets/ holds the static files: favicon.ico (every browser), logo.svg (sharp where SVG icons work).
    head_components=[
        rx.el.link(rel="icon", href="/logo.svg", type="image/svg+xml"),
        rx.el.link(rel="icon", href="/favicon.ico", sizes="32x32"),
    ],
)


def _index() -> rx.Component:
    return rx.center(rx.spinner(size="3"), height="100vh")


def _guarded(page_state_load):
    # The session check runs first: it redirects to /login before the page's own load is refused.
    return [AppState.check_session, page_state_load]


app.add_page(
    _index, route=routes.INDEX, title="Hubcast", on_load=[AppState.check_session, rx.redirect(routes.DASHBOARD)]
)
app.add_page(dashboard_page, route=routes.DASHBOARD, title="Dashboard · Hubcast", on_load=_guarded(DashboardState.load))
app.add_page(login_page, route=routes.LOGIN, title="Sign in · Hubcast", on_load=LoginState.on_login_page)
app.add_page(
    campaigns_page, route=routes.CAMPAIGNS, title="All Campaigns · Hubcast", on_load=_guarded(CampaignsState.load)
)
app.add_page(
    campaign_detail_page,
    route=routes.CAMPAIGN_DETAIL,
    title="Campaign results · Hubcast",
    on_load=_guarded(CampaignDetailState.load_campaign),
)
app.add_page(contacts_page, route=routes.CONTACTS, title="Contacts · Hubcast", on_load=_guarded(ContactsState.load))
app.add_page(lists_page, route=routes.LISTS, title="Lists · Hubcast", on_load=_guarded(ListsState.load))
app.add_page(segments_page, route=routes.SEGMENTS, title="Segments · Hubcast", on_load=_guarded(SegmentsState.load))
app.add_page(
    list_detail_page, route=routes.LIST_DETAIL, title="List · Hubcast", on_load=_guarded(ListDetailState.load_detail)
)
app.add_page(
    segment_editor_page,
    route=routes.SEGMENT_NEW,
    title="New segment · Hubcast",
    on_load=_guarded(SegmentEditorState.load_editor),
)
app.add_page(
    segment_editor_page,
    route=routes.SEGMENT_EDIT,
    title="Segment · Hubcast",
    on_load=_guarded(SegmentEditorState.load_editor),
)
app.add_page(templates_page, route=routes.TEMPLATES, title="Templates · Hubcast", on_load=_guarded(TemplatesState.load))
app.add_page(channels_page, route=routes.CHANNELS, title="Channels · Hubcast", on_load=_guarded(ChannelsState.load))
app.add_page(users_page, route=routes.USERS, title="Users · Hubcast", on_load=_guarded(UsersState.load))
app.add_page(audit_page, route=routes.AUDIT, title="Audit log · Hubcast", on_load=_guarded(AuditState.load))
app.add_page(
    wizard_page, route=routes.CAMPAIGN_NEW, title="New campaign · Hubcast", on_load=_guarded(WizardState.load_wizard)
)
app.add_page(
    wizard_page, route=routes.CAMPAIGN_EDIT, title="Campaign · Hubcast", on_load=_guarded(WizardState.load_wizard)
)
