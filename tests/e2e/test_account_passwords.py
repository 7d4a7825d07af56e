"""Issue 13 items 8 and 12 in a real browser: "Change password" in the side menu, "Reset password" on the
Users page, and the Content-Security-Policy breaking nothing (no violation in the console on the pages
these flows cross).

Each test makes its own user in the server's database (the shared e2e accounts keep their passwords)."""

from __future__ import annotations

import re
import secrets

import pytest
from playwright.sync_api import expect
from sqlmodel import Session

from app.db import make_engine
from app.services.accounts.users import create_user
from tests.support.e2e import do_login

pytestmark = pytest.mark.e2e

START = "copper meadow signal 31"
NEW = "violet lantern orbit 42"


def _new_user(hubcast, role: str = "basic") -> str:
    email = f"pw-{secrets.token_hex(4)}@example.com"
    engine = make_engine(hubcast.database_url)
    try:
        with Session(engine) as session:
            create_user(session=session, actor=None, email=email, role=role, password=START)
            session.commit()
    finally:
        engine.dispose()
    return email


def _csp_watch(page) -> list[str]:
    """Console messages and page errors that a Content-Security-Policy refusal produces."""
    seen: list[str] = []
    page.on(
        "console",
        lambda msg: (
            seen.append(msg.text) if "Content Security Policy" in msg.text or "Refused to" in msg.text else None
        ),
    )
    page.on("pageerror", lambda exc: seen.append(str(exc)) if "Content Security Policy" in str(exc) else None)
    return seen


def _signed_in(page, email: str, password: str) -> None:
    do_login(page, email, password)
    expect(page.locator("#current-user-email")).to_have_text(email)


def test_a_user_changes_their_password_and_their_other_browser_is_signed_out(new_page, hubcast, shoot):
    email = _new_user(hubcast)
    page, other = new_page(), new_page()
    violations = _csp_watch(page)
    _signed_in(page, email, START)
    _signed_in(other, email, START)

    page.get_by_role("button", name="Change password").click()
    dialog = page.get_by_role("dialog", name="Change password")
    expect(dialog).to_be_visible()
    # Wrong current password: refused, said so, nothing changed.
    dialog.get_by_label("Current password").fill("not my password at all")
    dialog.get_by_label("New password", exact=True).fill(NEW)
    dialog.get_by_label("Confirm new password").fill(NEW)
    dialog.get_by_role("button", name="Change password").click()
    expect(dialog.get_by_role("alert")).to_have_text("Your current password is not correct.")
    # A common password: refused with the reason.
    dialog.get_by_label("Current password").fill(START)
    dialog.get_by_label("New password", exact=True).fill("123qweasdzxc")
    dialog.get_by_label("Confirm new password").fill("123qweasdzxc")
    dialog.get_by_role("button", name="Change password").click()
    expect(dialog.get_by_role("alert")).to_contain_text("most common passwords")
    shoot(page, "change-password-dialog")
    # The real change.
    dialog.get_by_label("New password", exact=True).fill(NEW)
    dialog.get_by_label("Confirm new password").fill(NEW)
    dialog.get_by_role("button", name="Change password").click()
    expect(page.get_by_text("Password changed. 1 other session(s) ended.")).to_be_visible()
    expect(dialog).to_be_hidden()

    # This browser stays signed in; the other one is sent to the login page at its next click.
    page.locator("#nav-contacts").click()
    expect(page.locator("#page-title")).to_have_text("Contacts")
    other.locator("#nav-contacts").click()
    expect(other).to_have_url(re.compile(r"/login/?$"))

    # The old password no longer signs in; the new one does.
    third = new_page()
    do_login(third, email, START)
    expect(third.get_by_text("Incorrect email or password")).to_be_visible()
    _signed_in(third, email, NEW)
    assert violations == [], violations


def test_an_admin_resets_a_password_shown_once(new_page, hubcast, shoot):
    email = _new_user(hubcast)
    victim = new_page()
    _signed_in(victim, email, START)
    page = new_page()
    violations = _csp_watch(page)
    admin = hubcast.accounts["admin"]
    _signed_in(page, admin.email, admin.password)
    page.goto("/users")
    expect(page.locator("#page-title")).to_have_text("Users")
    page.get_by_role("button", name=f"Reset password of {email}").click()
    confirm = page.get_by_role("alertdialog", name="Reset password")
    expect(confirm).to_contain_text(email)
    shoot(page, "reset-password-confirm")
    confirm.get_by_role("button", name="Reset password").click()
    generated = page.locator("#reset-password-value")
    expect(generated).to_have_text(re.compile(r"^\S{16,}$"))
    new_password = generated.inner_text()
    shoot(page, "reset-password-shown-once")
    confirm.get_by_role("button", name="Done").click()
    expect(confirm).to_be_hidden()
    expect(page.locator("#reset-password-value")).to_have_count(0)

    victim.locator("#nav-contacts").click()  # signed out everywhere
    expect(victim).to_have_url(re.compile(r"/login/?$"))
    fresh = new_page()
    _signed_in(fresh, email, new_password)
    assert violations == [], violations
