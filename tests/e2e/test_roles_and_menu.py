"""Sign-in, the side menu per role, server-side refusals and the session cookie, in a real browser."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlmodel import Session, select

from app.db import make_engine
from app.models import AuditLog
from app.services.accounts.auth import LOGIN_FAILED_MESSAGE

pytestmark = pytest.mark.e2e

AT_LOGIN = re.compile(r"/login/?$")  # also proves no credentials ended up in a query string
AT_CAMPAIGNS = re.compile(r"/campaigns/?$")
AT_DASHBOARD = re.compile(r"/dashboard/?$")  # where a sign-in lands (the home dashboard)
COOKIE = "hubcast_session"
ROLE_LABELS = {"admin": "Admin", "advanced": "Advanced user", "basic": "Basic user"}
MENU_LINES = [
    "dashboard",
    "messaging",
    "social messaging",
    "all campaigns",
    "contacts",
    "contacts",
    "lists",
    "segments",
    "setup",
    "templates",
    "channels",
]
NAV_LINKS = {
    "#nav-dashboard": "/dashboard",
    "#nav-campaigns": "/campaigns",
    "#nav-contacts": "/contacts",
    "#nav-lists": "/lists",
    "#nav-segments": "/segments",
    "#nav-templates": "/templates",
    "#nav-channels": "/channels",
}


def _menu_lines(page) -> list[str]:
    menu = page.locator("#nav-campaigns").locator("xpath=..")
    return [line.strip().lower() for line in menu.inner_text().splitlines() if line.strip()]


@pytest.mark.parametrize("who", ["admin", "advanced", "basic"])
def test_each_role_lands_on_all_campaigns_with_its_menu(page, login_as, who):
    account = login_as(page, who)

    # No campaigns in the seed: the empty state invites to start one.
    empty = page.locator("#empty-state")
    expect(empty).to_be_visible()
    expect(empty).to_contain_text("No campaigns yet")
    expect(page.locator("#start-campaign")).to_be_visible()
    expect(page.locator("#start-campaign")).to_have_text("Start a campaign")

    # Messaging → Social Messaging → All Campaigns, then Contacts/Lists/Segments, Templates, Channels.
    for selector, href in NAV_LINKS.items():
        expect(page.locator(selector)).to_be_visible()
        expect(page.locator(selector)).to_have_attribute("href", href)
    if who == "admin":
        expect(page.locator("#nav-users")).to_be_visible()
        expect(page.locator("#nav-users")).to_have_attribute("href", "/users")
        assert _menu_lines(page) == MENU_LINES + ["users"]
    else:
        expect(page.locator("#nav-users")).to_have_count(0)
        assert _menu_lines(page) == MENU_LINES

    expect(page.locator("#current-user-email")).to_have_text(account.email)
    expect(page.locator("#current-user-role")).to_have_text(ROLE_LABELS[who])


def test_basic_user_typing_users_address_is_refused_by_the_server(page, login_as, hubcast):
    account = login_as(page, "basic")
    page.goto("/users")

    refusal = page.get_by_text("You don't have permission to do that.")
    expect(refusal).to_be_visible()
    expect(page.locator("#page-title")).to_have_text("Users")  # the shell renders, the data does not
    expect(page.locator("#users-table")).to_have_count(0)
    expect(page.locator("#users-table tbody tr")).to_have_count(0)
    expect(page.locator("#nav-users")).to_have_count(0)

    # The "Add user" button is reachable by typing the address, but its handler is refused too.
    expect(refusal).to_have_count(0)  # let the first toast go, so the next one is surely new
    page.locator("#add-user").click()
    expect(refusal).to_be_visible()
    expect(page.locator("#new-user-email")).to_have_count(0)

    # Not just hidden: the server refused both handlers and wrote them down.
    assert {"UsersState.load", "UsersState.open_create"} <= _refused_handlers(hubcast.database_url, account.email)


def test_admin_reads_the_audit_log_from_the_users_page(page, login_as):
    admin = login_as(page, "admin")
    page.goto("/users")
    page.locator("#open-audit-log").click()
    expect(page).to_have_url(re.compile(r"/audit/?$"))
    expect(page.locator("#page-title")).to_have_text("Audit log")
    expect(page.locator("#audit-table tbody tr").first).to_be_visible()
    expect(page.locator("#audit-table")).to_contain_text("auth.login")  # this very sign-in, on the first page
    expect(page.locator("#audit-table")).to_contain_text(admin.email)


def test_basic_user_typing_the_audit_address_is_refused_by_the_server(page, login_as, hubcast):
    account = login_as(page, "basic")
    page.goto("/audit")
    expect(page.get_by_text("You don't have permission to do that.")).to_be_visible()
    expect(page.locator("#audit-table")).to_have_count(0)
    assert "AuditState.load" in _refused_handlers(hubcast.database_url, account.email)


def _refused_handlers(database_url: str, email: str) -> set[str]:
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            return set(
                session.exec(
                    select(AuditLog.target_id).where(
                        AuditLog.action == "permission.refused", AuditLog.actor_email == email
                    )
                ).all()
            )
    finally:
        engine.dispose()


def test_wrong_password_shows_the_generic_error_and_stays_on_login(page, hubcast, submit_login):
    account = hubcast.accounts["advanced"]
    submit_login(page, account.email, "not-the-password-123")
    expect(page.locator("#login-error")).to_have_text(LOGIN_FAILED_MESSAGE)
    expect(page).to_have_url(AT_LOGIN)
    expect(page.locator("#page-title")).to_have_count(0)

    # An unknown account gets exactly the same words.
    submit_login(page, "nobody-e2e@example.com", "not-the-password-123")
    expect(page.locator("#login-error")).to_have_text(LOGIN_FAILED_MESSAGE)
    expect(page).to_have_url(AT_LOGIN)

    # One mistake does not lock the account out (and the right password clears the failure count).
    submit_login(page, account.email, account.password)
    expect(page).to_have_url(AT_DASHBOARD)
    expect(page.locator("#current-user-email")).to_have_text(account.email)


def test_visiting_campaigns_signed_out_redirects_to_login(page):
    page.goto("/campaigns")
    expect(page).to_have_url(AT_LOGIN)
    expect(page.locator("#login-email")).to_be_visible()
    expect(page.locator("#page-title")).to_have_count(0)


def test_logout_returns_to_login_and_the_session_is_gone(page, login_as):
    login_as(page, "advanced")
    page.locator("#logout-button").click()
    expect(page).to_have_url(AT_LOGIN)
    expect(page.locator("#login-email")).to_be_visible()
    assert not _session_cookie(page), "the session cookie outlived the logout"

    page.goto("/campaigns")
    expect(page).to_have_url(AT_LOGIN)
    expect(page.locator("#page-title")).to_have_count(0)


def _session_cookie(page) -> str:
    return next((c["value"] for c in page.context.cookies() if c["name"] == COOKIE), "")


def _wait_session_cookie_other_than(page, *old: str) -> str:
    # The cookie is written by the page's script when the login's state update arrives.
    page.wait_for_function(
        """([name, old]) => {
             const pair = document.cookie.split('; ').find(p => p.startsWith(name + '='));
             const value = pair ? decodeURIComponent(pair.slice(name.length + 1)) : '';
             return value !== '' && !old.includes(value);
           }""",
        arg=[COOKIE, list(old)],
    )
    return _session_cookie(page)


def test_session_cookie_is_issued_by_the_server_and_rotates_on_every_login(page, hubcast, login_as):
    # An attacker plants a session id of their choosing (session fixation)...
    chosen = "attacker-chosen-session-value-0123456789"
    page.context.add_cookies([{"name": COOKIE, "value": chosen, "url": hubcast.base_url}])
    page.goto("/campaigns")
    expect(page).to_have_url(AT_LOGIN)  # ...which opens nothing

    login_as(page, "advanced")
    first = _wait_session_cookie_other_than(page, chosen)
    assert first != chosen
    assert len(first) >= 32

    page.locator("#logout-button").click()
    expect(page).to_have_url(AT_LOGIN)
    # Replaying the old value after logout opens nothing either.
    page.context.add_cookies([{"name": COOKIE, "value": first, "url": hubcast.base_url}])
    page.goto("/campaigns")
    expect(page).to_have_url(AT_LOGIN)

    login_as(page, "advanced")
    second = _wait_session_cookie_other_than(page, chosen, first)
    assert second not in (chosen, first)
