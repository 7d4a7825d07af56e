"""Contacts, lists and segments as a user clicks them (SPEC S5–S7): the rule builder's live count, lists made
by hand, a CSV import with its summary, the contact dialog, and what a basic user does not get."""

from __future__ import annotations

import re
import secrets

import pytest
from playwright.sync_api import expect
from sqlalchemy import func
from sqlmodel import Session, select

from app.db import make_engine
from app.models import Contact, ContactIdentity, ContactList, ListMembership, Segment

pytestmark = pytest.mark.e2e


def _db(hubcast):
    return make_engine(hubcast.database_url)


def _scalar(hubcast, query):
    engine = _db(hubcast)
    try:
        with Session(engine) as session:
            return session.exec(query).one()
    finally:
        engine.dispose()


def _rows(hubcast, query) -> list:
    engine = _db(hubcast)
    try:
        with Session(engine) as session:
            return list(session.exec(query).all())
    finally:
        engine.dispose()


def _choose(page, trigger, option: str) -> None:
    """Pick an option in a Radix select."""
    trigger.click()
    page.get_by_role("option", name=option, exact=True).click()


def _open(page, nav_id: str, title: str) -> None:
    page.locator(nav_id).click()
    expect(page.locator("#page-title")).to_have_text(title)


def test_advanced_user_builds_a_segment_and_sees_its_live_count(page, login_as, hubcast, shoot):
    au = _scalar(hubcast, select(func.count()).select_from(Contact).where(Contact.country == "AU"))
    au_or_fr = _scalar(hubcast, select(func.count()).select_from(Contact).where(Contact.country.in_(["AU", "FR"])))
    assert 0 < au < au_or_fr
    login_as(page, "advanced")
    _open(page, "#nav-segments", "Segments")
    expect(page.locator("#segments-table tbody tr").first).to_be_visible()
    shoot(page, "segments")
    page.locator("#create-segment").click()
    expect(page.locator("#page-title")).to_have_text("New segment")
    expect(page.locator("#segment-count-error")).to_contain_text("needs a value")

    rules = page.locator(".segment-rule")
    expect(rules).to_have_count(1)
    rules.nth(0).locator(".rule-value input").fill(
        "au"
    )  # text comparisons ignore case; countries are stored upper-case
    expect(page.locator("#segment-live-count")).to_have_text(f"{au:,}")

    page.locator("#segment-add-rule").click()
    expect(rules).to_have_count(2)
    rules.nth(1).locator(".rule-value input").fill("FR")
    # "all": nobody is in Australia and France at once.
    expect(page.locator("#segment-live-count")).to_have_text("0")
    _choose(page, page.locator("#segment-match"), "any")
    expect(page.locator("#segment-live-count")).to_have_text(f"{au_or_fr:,}")
    expect(rules.nth(1)).to_contain_text("or")

    # A date rule: the value box becomes a date picker.
    page.locator("#segment-add-rule").click()
    _choose(page, rules.nth(2).locator(".rule-field"), "Created")
    expect(rules.nth(2).locator("input[type=date]")).to_be_visible()
    rules.nth(2).locator(".rule-remove").click()
    expect(rules).to_have_count(2)
    expect(page.locator("#segment-live-count")).to_have_text(f"{au_or_fr:,}")

    name = f"E2E Australia or France {secrets.token_hex(3)}"
    page.locator("#segment-name").fill(name)
    shoot(page, "segment-editor")
    page.locator("#segment-save").click()
    expect(page).to_have_url(re.compile(r"/segments/?$"))
    row = page.locator("#segments-table tbody tr").filter(has_text=name)
    expect(row).to_contain_text(f"{au_or_fr:,}")
    saved = _rows(hubcast, select(Segment).where(Segment.name == name))
    assert [(s.match, [r["value"] for r in s.rules]) for s in saved] == [("any", ["au", "FR"])]

    # Editing it again shows the saved rules and the same count.
    row.locator(".segment-link").click()
    expect(page.locator("#page-title")).to_have_text(name)
    expect(page.locator("#segment-live-count")).to_have_text(f"{au_or_fr:,}")


def test_advanced_user_creates_a_list_and_adds_contacts_from_the_table(page, login_as, hubcast, shoot):
    login_as(page, "advanced")
    _open(page, "#nav-lists", "Lists")
    name = f"E2E hand-picked {secrets.token_hex(3)}"
    page.locator("#create-list").click()
    page.locator("#list-name").fill(name)
    shoot(page, "lists-create-dialog")
    page.locator("#list-save").click()
    row = page.locator("#lists-table tbody tr").filter(has_text=name)
    expect(row.locator("td").first).to_have_text("0")
    shoot(page, "lists")

    _open(page, "#nav-contacts", "Contacts")
    checks = page.locator("#contacts-table tbody tr .contact-select")
    expect(checks.first).to_be_visible()
    for i in range(3):
        checks.nth(i).click()
    expect(page.locator("#contacts-selected-count")).to_have_text("3 selected")
    page.locator("#add-to-list").click()
    _choose(page, page.locator("#add-to-list-select"), name)
    shoot(page, "contacts-add-to-list-dialog")
    page.locator("#add-to-list-submit").click()
    expect(page.get_by_text(f"Added 3 contacts to {name}.")).to_be_visible()

    _open(page, "#nav-lists", "Lists")
    row = page.locator("#lists-table tbody tr").filter(has_text=name)
    expect(row.locator("td").first).to_have_text("3")
    row.locator(".list-link").click()
    expect(page.locator("#page-title")).to_have_text(name)
    members = page.locator("#list-members-table tbody tr")
    expect(members).to_have_count(3)
    expect(members.first).to_contain_text("Manual")
    members.first.locator(".member-select").click()
    shoot(page, "list-detail")
    page.locator("#remove-members").click()
    expect(members).to_have_count(2)
    list_id = _scalar(hubcast, select(ContactList.id).where(ContactList.name == name))
    assert (
        _scalar(hubcast, select(func.count()).select_from(ListMembership).where(ListMembership.list_id == list_id)) == 2
    )

    # Rename, then delete it (its contacts stay in the base).
    page.locator("#back-to-lists").click()
    row = page.locator("#lists-table tbody tr").filter(has_text=name)
    row.locator(".list-rename").click()
    expect(page.locator("#list-name")).to_have_value(name)
    page.locator("#list-name").fill(name + " (renamed)")
    shoot(page, "lists-rename-dialog")
    page.locator("#list-save").click()
    row = page.locator("#lists-table tbody tr").filter(has_text=name + " (renamed)")
    expect(row.locator("td").first).to_have_text("2")
    contacts_before = _scalar(hubcast, select(func.count()).select_from(Contact))
    row.locator(".list-delete").click()
    expect(page.get_by_role("alertdialog")).to_contain_text("its contacts stay in the base")
    shoot(page, "lists-delete-confirm")
    page.locator("#list-delete-confirm").click()
    expect(page.locator("#lists-table tbody tr").filter(has_text=name)).to_have_count(0)
    assert _rows(hubcast, select(ContactList).where(ContactList.id == list_id)) == []
    assert _scalar(hubcast, select(func.count()).select_from(Contact)) == contacts_before


def _unused_numbers(hubcast, count: int) -> list[str]:
    taken = set(_rows(hubcast, select(ContactIdentity.address)))
    out, n = [], 412345000
    while len(out) < count:
        n += 1
        number = f"+61{n}"
        if number not in taken:
            out.append(number)
    return out


def test_import_a_semicolon_csv_into_a_new_list(page, login_as, hubcast, shoot, tmp_path):
    known = _rows(hubcast, select(ContactIdentity.address).where(ContactIdentity.channel_type == "whatsapp").limit(1))[
        0
    ]
    fresh = _unused_numbers(hubcast, 2)
    path = tmp_path / "spring-fair.csv"
    path.write_text(
        "phone;first_name;last_name;city;Loyalty Tier\n"
        f"{known};;;;gold\n"
        f"{fresh[0]};Olivia;Nguyen;Sydney;silver\n"
        f"{fresh[1]};Jack;Brown;Perth;\n"
        "0412 345 678;No;Country code;;\n"
        f"{fresh[0]};Olivia;Again;;\n",
        encoding="utf-8-sig",
    )
    login_as(page, "advanced")
    _open(page, "#nav-contacts", "Contacts")
    shoot(page, "contacts")
    page.locator("#import-contacts").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Drop a CSV file here")
    shoot(page, "contacts-import-upload")
    dialog.locator("input[type=file]").set_input_files(str(path))

    expect(page.locator("#import-rows")).to_have_text("5")
    expect(page.locator("#import-new")).to_have_text("2")
    expect(page.locator("#import-updated")).to_have_text("1")
    expect(page.locator("#import-invalid")).to_have_text("1")
    expect(page.locator("#import-duplicates")).to_have_text("1")
    expect(page.locator("#import-delimiter")).to_contain_text("semicolon")
    invalid = page.locator("#import-invalid-table tbody tr")
    expect(invalid).to_have_count(1)
    expect(invalid.first).to_contain_text("5")
    expect(invalid.first).to_contain_text("Country code missing")
    assert _rows(hubcast, select(ContactIdentity).where(ContactIdentity.address.in_(fresh))) == []  # nothing yet

    page.locator("#import-target-new").click()
    list_name = f"E2E Spring fair {secrets.token_hex(3)}"
    page.locator("#import-new-list-name").fill(list_name)
    shoot(page, "contacts-import-summary")
    page.locator("#import-confirm").click()
    expect(page.locator("#import-result")).to_contain_text("2 new contact(s), 1 updated, 1 invalid row(s) skipped")
    expect(page.locator("#import-result")).to_contain_text(f"3 added to the list {list_name}")
    shoot(page, "contacts-import-done")
    page.locator("#import-close").click()

    list_id = _scalar(hubcast, select(ContactList.id).where(ContactList.name == list_name))
    sources = _rows(hubcast, select(ListMembership.source).where(ListMembership.list_id == list_id))
    assert sources == ["import"] * 3
    olivia = _rows(
        hubcast,
        select(Contact)
        .join(ContactIdentity, ContactIdentity.contact_id == Contact.id)
        .where(ContactIdentity.address == fresh[0]),
    )
    assert [(c.first_name, c.last_name, c.country, c.custom_fields) for c in olivia] == [
        ("Olivia", "Nguyen", "AU", {"loyalty_tier": "silver"})
    ]


def test_add_and_edit_a_contact_and_unsubscribe_them(page, login_as, hubcast, shoot):
    number = _unused_numbers(hubcast, 1)[0]
    login_as(page, "advanced")
    _open(page, "#nav-contacts", "Contacts")
    page.locator("#add-contact").click()
    page.locator("#contact-first-name").fill("Zoë")
    page.locator("#contact-last-name").fill("E2E-Contact")
    page.locator("#contact-identity-whatsapp").fill(number[:3] + " " + number[3:])
    page.locator(".contact-custom-key input").first.fill("favourite colour")
    page.locator(".contact-custom-value input").first.fill("teal")
    shoot(page, "contacts-add-dialog")
    page.locator("#contact-save").click()
    expect(page.get_by_text("Zoë E2E-Contact added.")).to_be_visible()

    page.locator("#contact-search").fill("E2E-Contact")
    row = page.locator("#contacts-table tbody tr").filter(has_text="Zoë E2E-Contact")
    expect(row).to_contain_text(number)
    expect(row).to_contain_text("AU")  # the country comes from the number
    row.locator(".contact-name").click()
    expect(page.locator("#contact-identity-whatsapp")).to_have_value(number)
    page.locator("#unsubscribe-whatsapp").click()
    expect(page.locator("#subscribe-whatsapp")).to_be_visible()
    shoot(page, "contacts-edit-dialog")
    page.locator("#contact-identity-whatsapp").fill(
        _rows(
            hubcast,
            select(ContactIdentity.address)
            .where(ContactIdentity.channel_type == "whatsapp", ContactIdentity.address != number)
            .limit(1),
        )[0]
    )
    page.locator("#contact-save").click()
    expect(page.locator("#contact-form-error")).to_contain_text("already belongs to")
    page.get_by_role("button", name="Cancel").click()
    expect(row).to_contain_text("Unsubscribed")


def test_basic_user_sees_audiences_but_no_controls_to_change_them(page, login_as, shoot):
    login_as(page, "basic")
    _open(page, "#nav-lists", "Lists")
    expect(page.locator("#lists-table tbody tr").first).to_be_visible()
    expect(page.locator("#create-list")).to_have_count(0)
    expect(page.locator(".list-rename")).to_have_count(0)
    expect(page.locator(".list-delete")).to_have_count(0)
    shoot(page, "lists-basic")
    page.locator("#lists-table tbody tr .list-link").first.click()
    expect(page.locator("#list-members-table tbody tr").first).to_be_visible()
    expect(page.locator(".member-select")).to_have_count(0)
    expect(page.locator("#list-add-contacts")).to_have_count(0)

    _open(page, "#nav-segments", "Segments")
    expect(page.locator("#segments-table tbody tr").first).to_be_visible()
    expect(page.locator("#create-segment")).to_have_count(0)
    expect(page.locator(".segment-delete")).to_have_count(0)
    page.locator("#segments-table tbody tr .segment-link").first.click()
    expect(page.locator("#segment-read-only")).to_be_visible()
    expect(page.locator("#segment-live-count")).not_to_have_text("—")
    expect(page.locator("#segment-save")).to_have_count(0)
    expect(page.locator("#segment-add-rule")).to_have_count(0)
    shoot(page, "segment-editor-basic")

    _open(page, "#nav-contacts", "Contacts")
    expect(page.locator("#contacts-table tbody tr").first).to_be_visible()
    expect(page.locator("#import-contacts")).to_have_count(0)
    expect(page.locator("#add-contact")).to_have_count(0)
    expect(page.locator(".contact-select")).to_have_count(0)
    shoot(page, "contacts-basic")
