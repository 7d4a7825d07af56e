"""The pages show the seeded data (and never a secret); admins manage users; screenshots for humans."""

from __future__ import annotations

import re
import secrets
from collections import Counter

import pytest
from playwright.sync_api import expect
from sqlmodel import Session, select

from app.db import make_engine
from app.models import Channel, Contact, ContactList, ListMembership, Segment, Template
from app.services.accounts.auth import LOGIN_FAILED_MESSAGE

pytestmark = pytest.mark.e2e

AT_LOGIN = re.compile(r"/login/?$")
SEARCH_TERM = "Müller"  # a seeded German last name; non-ASCII so ASCII-folded social handles cannot match it


@pytest.fixture(scope="module")
def seeded(hubcast) -> dict:
    """What the pages should show, read straight from the server's database."""
    engine = make_engine(hubcast.database_url)
    try:
        with Session(engine) as session:
            contacts = session.exec(select(Contact)).all()
            members = Counter(m.list_id for m in session.exec(select(ListMembership)).all())
            channel = session.exec(select(Channel).where(Channel.name == "Sandbox")).one()
            return {
                "contacts": len(contacts),
                "search_hits": sum(SEARCH_TERM in f"{c.first_name} {c.last_name}" for c in contacts),
                "lists": {cl.name: members[cl.id] for cl in session.exec(select(ContactList)).all()},
                "segments": [s.name for s in session.exec(select(Segment)).all()],
                "template_statuses": Counter(t.status for t in session.exec(select(Template)).all()),
                "template_names": {t.name for t in session.exec(select(Template)).all()},
                "secrets": [v for v in (channel.access_token, channel.app_secret, channel.verify_token) if v],
            }
    finally:
        engine.dispose()


def _open(page, nav_id: str, title: str) -> None:
    page.locator(nav_id).click()
    expect(page.locator("#page-title")).to_have_text(title)


def test_contacts_table_pages_and_search_narrows_it(page, login_as, seeded):
    assert seeded["search_hits"] > 0, f"the demo seed has no {SEARCH_TERM}; pick another last name"
    login_as(page, "basic")
    _open(page, "#nav-contacts", "Contacts")

    rows = page.locator("#contacts-table tbody tr")
    pages = -(-seeded["contacts"] // 50)
    expect(page.get_by_text(f"{seeded['contacts']} contacts", exact=True)).to_be_visible()
    expect(page.get_by_text(f"Page 1 of {pages}", exact=True)).to_be_visible()
    expect(rows).to_have_count(50)
    first_page_first_row = rows.first.inner_text()

    page.get_by_role("button", name="Next page").click()
    expect(page.get_by_text(f"Page 2 of {pages}", exact=True)).to_be_visible()
    expect(rows.first).not_to_have_text(first_page_first_row)
    page.get_by_role("button", name="Previous page").click()
    expect(page.get_by_text(f"Page 1 of {pages}", exact=True)).to_be_visible()

    page.locator("#contact-search").fill(SEARCH_TERM)
    hits = seeded["search_hits"]
    expect(page.get_by_text(f"{hits} contact{'' if hits == 1 else 's'}", exact=True)).to_be_visible()
    expect(rows).to_have_count(seeded["search_hits"])
    for name in rows.locator("th").all_inner_texts():
        assert SEARCH_TERM in name

    page.locator("#contact-search").fill("zz-no-such-contact-zz")
    expect(page.locator("#contacts-empty")).to_contain_text("No contact matches this search.")


def test_lists_and_segments_show_the_seeded_rows(page, login_as, seeded):
    login_as(page, "advanced")
    _open(page, "#nav-lists", "Lists")
    rows = page.locator("#lists-table tbody tr")
    expect(rows).to_have_count(len(seeded["lists"]))
    for name, count in seeded["lists"].items():
        row = rows.filter(has_text=name)
        expect(row).to_have_count(1)
        expect(row.locator("td").first).to_have_text(str(count))

    _open(page, "#nav-segments", "Segments")
    rows = page.locator("#segments-table tbody tr")
    expect(rows).to_have_count(len(seeded["segments"]))
    for name in seeded["segments"]:
        expect(rows.filter(has_text=name)).to_have_count(1)
    expect(rows.filter(has_text="Australian customers")).to_contain_text("country equals AU")


def test_templates_show_every_review_status(page, login_as, seeded):
    login_as(page, "basic")
    _open(page, "#nav-templates", "Templates")
    table = page.locator("#templates-table")
    expect(table.locator("tbody tr")).to_have_count(sum(seeded["template_statuses"].values()))
    assert {"APPROVED", "PENDING", "REJECTED"} <= set(seeded["template_statuses"])
    for status, count in seeded["template_statuses"].items():
        expect(table.locator(".rt-Badge", has_text=re.compile(f"^{status}$"))).to_have_count(count)
    for name in seeded["template_names"]:
        expect(table.get_by_text(name, exact=True).first).to_be_visible()


def test_channels_show_the_sandbox_connected_and_never_a_secret(page, login_as, seeded):
    frames: list[str] = []
    page.on(
        "websocket",
        lambda ws: ws.on(
            "framereceived",
            lambda payload: frames.append(payload if isinstance(payload, str) else payload.decode(errors="replace")),
        ),
    )
    login_as(page, "admin")
    _open(page, "#nav-channels", "Channels")
    row = page.locator("#channels-table tbody tr").filter(has_text="Sandbox")
    expect(row).to_have_count(1)
    expect(row.locator(".rt-Badge", has_text=re.compile("^connected$"))).to_be_visible()
    expect(row).to_contain_text("+1 555 010 0000")
    expect(row.locator(".rt-Badge", has_text=re.compile("^set$"))).to_be_visible()  # a token is only "set" or "missing"

    html = page.content()
    assert frames, "no websocket traffic was observed"
    for secret in seeded["secrets"]:
        assert secret not in html, "a channel secret is in the page"
        assert not any(secret in frame for frame in frames), "a channel secret was sent to the browser"


def _users_row(page, email: str):
    return page.locator("#users-table tbody tr").filter(has_text=email)


def test_admin_creates_a_user_and_deactivating_them_ends_their_open_session(
    new_page, login_as, login, shoot, submit_login
):
    admin = new_page()
    login_as(admin, "admin")
    _open(admin, "#nav-users", "Users")
    expect(_users_row(admin, "e2e-admin@example.com")).to_contain_text("You")

    email = f"e2e-new-{secrets.token_hex(4)}@example.com"
    admin.locator("#add-user").click()
    admin.locator("#new-user-email").fill(email)
    admin.locator("#new-user-name").fill("New Colleague")
    admin.locator("#create-user-submit").click()
    shown = admin.locator("#generated-password")
    expect(shown).to_be_visible()
    password = shown.inner_text().strip()
    assert len(password) >= 10
    expect(admin.get_by_role("dialog")).to_contain_text(f"Give this password to {email}")
    shoot(admin, "users-new-user-password")
    admin.get_by_role("button", name="Done").click()
    expect(admin.get_by_role("dialog")).to_have_count(0)
    row = _users_row(admin, email)
    expect(row.get_by_text("Active", exact=True)).to_be_visible()

    # Shown once: opening the dialog again shows an empty form, and the password is nowhere on the page.
    admin.locator("#add-user").click()
    expect(admin.locator("#new-user-email")).to_have_value("")
    expect(admin.locator("#generated-password")).to_have_count(0)
    assert password not in admin.content()
    admin.get_by_role("button", name="Cancel").click()
    expect(admin.get_by_role("dialog")).to_have_count(0)

    # The new colleague signs in with the generated password, in another browser.
    colleague = new_page()
    login(colleague, email, password)
    expect(colleague.locator("#current-user-role")).to_have_text("Basic user")

    row.get_by_role("button", name="Deactivate").click()
    expect(row.get_by_text("Deactivated", exact=True)).to_be_visible()

    # Their already-open page: the next navigation finds the session gone.
    colleague.locator("#nav-contacts").click()
    expect(colleague).to_have_url(AT_LOGIN)
    submit_login(colleague, email, password)
    expect(colleague.locator("#login-error")).to_have_text(LOGIN_FAILED_MESSAGE)


def test_deactivation_refuses_the_next_action_of_an_open_page(new_page, login_as, hubcast):
    victim_account = hubcast.accounts["doomed"]
    victim = new_page()
    login_as(victim, "doomed")
    _open(victim, "#nav-contacts", "Contacts")
    expect(victim.locator("#contacts-table tbody tr")).to_have_count(50)

    admin = new_page()
    login_as(admin, "admin")
    _open(admin, "#nav-users", "Users")
    row = _users_row(admin, victim_account.email)
    row.get_by_role("button", name="Deactivate").click()
    expect(row.get_by_text("Deactivated", exact=True)).to_be_visible()

    # No navigation: a search on the page already open is a server event, refused and sent to sign in.
    victim.locator("#contact-search").fill("Smith")
    expect(victim).to_have_url(AT_LOGIN)
    expect(victim.get_by_text("Your session has ended. Please sign in again.").first).to_be_visible()


def test_screenshots_of_every_page(new_page, login_as, shoot):
    page = new_page()
    page.goto("/login")
    expect(page.locator("#login-submit")).to_be_visible()
    shoot(page, "login")

    login_as(page, "admin")
    expect(page.locator("#start-campaign")).to_be_visible()
    shoot(page, "campaigns")
    for nav_id, title, ready, name in [
        ("#nav-contacts", "Contacts", "#contacts-table tbody tr", "contacts"),
        ("#nav-lists", "Lists", "#lists-table tbody tr", "lists"),
        ("#nav-segments", "Segments", "#segments-table tbody tr", "segments"),
        ("#nav-templates", "Templates", "#templates-table tbody tr", "templates"),
        ("#nav-channels", "Channels", "#channels-table tbody tr", "channels"),
        ("#nav-users", "Users", "#users-table tbody tr", "users"),
    ]:
        _open(page, nav_id, title)
        expect(page.locator(ready).first).to_be_visible()
        shoot(page, name)

    _open(page, "#nav-campaigns", "All Campaigns")
    expect(page.locator("#start-campaign")).to_be_visible()
    expect(page.locator("html")).not_to_have_class(re.compile(r"\bdark\b"))
    page.locator("#color-mode-button").click()
    expect(page.locator("html")).to_have_class(re.compile(r"\bdark\b"))
    shoot(page, "campaigns-dark")
    _open(page, "#nav-contacts", "Contacts")
    expect(page.locator("#contacts-table tbody tr").first).to_be_visible()
    shoot(page, "contacts-dark")


def test_the_static_files_are_served_and_the_logo_shown(page, login_as, hubcast):
    """assets/: the favicon a browser tab shows, the logo in the menu, the sample CSV a user can start from."""
    icon = page.request.get(f"{hubcast.base_url}/favicon.ico")
    assert icon.ok and icon.body()[:4] == b"\x00\x00\x01\x00"  # an ICO container
    sample = page.request.get(f"{hubcast.base_url}/sample-audience.csv")
    assert sample.ok and sample.text().splitlines()[0] == "phone,first_name,last_name,city"
    login_as(page, "basic")
    logo = page.locator("img[src='/logo.svg']")
    expect(logo).to_be_visible()
    assert page.evaluate("src => fetch(src).then(r => r.ok)", "/logo.svg")
