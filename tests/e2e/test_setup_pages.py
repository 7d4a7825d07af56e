"""Templates and Channels pages as users click them, against a real Sandbox process.

A Sandbox is started for this module with a small catalogue (the demo templates plus three more) and
the seeded Sandbox channel is pointed at it (its token stored unsealed, which the server reads as is;
the server seals with its own key, which this process does not have). Everything this module adds
(channels, templates) is removed and the Sandbox channel restored afterwards, so other modules see the
seed as it was.
"""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import text
from sqlmodel import Session

from app.db import make_engine
from app.whatsapp.sandbox.catalog import demo_templates
from tests.support.sandbox import run_sandbox

pytestmark = pytest.mark.e2e

TOKEN, SECRET = "e2e-setup-sandbox-token-0123456789", "e2e-setup-sandbox-app-secret"
EXTRA = [
    {
        "id": "7000000000000001",
        "name": "e2e_welcome",
        "language": "en_US",
        "status": "APPROVED",
        "category": "MARKETING",
        "parameter_format": "POSITIONAL",
        "components": [
            {
                "type": "BODY",
                "text": "Welcome {{1}}, enjoy {{2}} off today.",
                "example": {"body_text": [["Maria", "10%"]]},
            }
        ],
    },
    {
        "id": "7000000000000002",
        "name": "e2e_welcome",
        "language": "fr",
        "status": "PENDING",
        "category": "MARKETING",
        "parameter_format": "POSITIONAL",
        "components": [{"type": "BODY", "text": "Bienvenue {{1}} !", "example": {"body_text": [["Camille"]]}}],
    },
    {
        "id": "7000000000000003",
        "name": "e2e_paused_offer",
        "language": "de",
        "status": "PAUSED",
        "category": "UTILITY",
        "parameter_format": "POSITIONAL",
        "components": [{"type": "BODY", "text": "Hallo, Ihr Angebot ist bereit."}],
    },
]


@pytest.fixture(scope="module")
def setup(hubcast, tmp_path_factory):
    engine = make_engine(hubcast.database_url)
    with engine.begin() as conn:
        sandbox = (
            conn.execute(
                text(
                    "SELECT id, phone_number_id, business_account_id, api_base_url, access_token, "
                    "app_secret FROM channels WHERE kind = 'sandbox'"
                )
            )
            .mappings()
            .one()
        )
        channels_before = set(conn.execute(text("SELECT id FROM channels")).scalars())
        templates_before = set(conn.execute(text("SELECT id FROM templates")).scalars())
    workdir = tmp_path_factory.mktemp("setup-sandbox")
    catalogue = workdir / "catalogue.json"
    catalogue.write_text(json.dumps(demo_templates() + EXTRA))
    extra = (
        "--phone-number-id",
        sandbox["phone_number_id"],
        "--waba-id",
        sandbox["business_account_id"],
        "--templates-file",
        str(catalogue),
    )
    with run_sandbox(workdir, token=TOKEN, secret=SECRET, extra=extra) as running:
        url = running.url
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE channels SET api_base_url = :url, access_token = :t, app_secret = :s WHERE id = :id"),
                {"url": url, "t": TOKEN, "s": SECRET, "id": sandbox["id"]},
            )
        try:
            yield {
                "url": url,
                "sandbox_id": sandbox["id"],
                "pnid": sandbox["phone_number_id"],
                "waba": sandbox["business_account_id"],
                "engine": engine,
            }
        finally:
            with engine.begin() as conn:
                conn.execute(
                    text("UPDATE channels SET api_base_url = :url, access_token = :t, app_secret = :s WHERE id = :id"),
                    {
                        "url": sandbox["api_base_url"],
                        "t": sandbox["access_token"],
                        "s": sandbox["app_secret"],
                        "id": sandbox["id"],
                    },
                )
                new_templates = set(conn.execute(text("SELECT id FROM templates")).scalars()) - templates_before
                for template_id in new_templates:
                    conn.execute(text("DELETE FROM templates WHERE id = :id"), {"id": template_id})
                for channel_id in set(conn.execute(text("SELECT id FROM channels")).scalars()) - channels_before:
                    conn.execute(text("DELETE FROM templates WHERE channel_id = :id"), {"id": channel_id})
                    conn.execute(text("DELETE FROM channels WHERE id = :id"), {"id": channel_id})
            engine.dispose()


def _open(page, nav_id: str, title: str) -> None:
    page.locator(nav_id).click()
    expect(page.locator("#page-title")).to_have_text(title)


def _frames(page) -> list[str]:
    frames: list[str] = []
    page.on(
        "websocket",
        lambda ws: ws.on(
            "framereceived", lambda p: frames.append(p if isinstance(p, str) else p.decode(errors="replace"))
        ),
    )
    return frames


# --- Channels ------------------------------------------------------------------------------------


def test_admin_connects_tests_edits_and_disconnects_a_number(page, login_as, setup, shoot):
    frames = _frames(page)
    login_as(page, "admin")
    _open(page, "#nav-channels", "Channels")
    sandbox_row = page.locator("#channels-table tbody tr").filter(has_text="Sandbox")
    expect(sandbox_row.locator(".simulator-badge")).to_have_text("Simulator")
    expect(page.locator("#webhook-url")).to_have_value(re.compile(r"^http://localhost:\d+/webhooks/whatsapp$"))
    shoot(page, "channels-admin")

    page.locator("#connect-channel").click()
    dialog = page.locator("#channel-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#channel-api-base-url")).to_have_value("https://graph.facebook.com")
    page.locator("#channel-name").fill("E2E Shop")
    page.locator("#channel-phone-number-id").fill("not-digits")
    page.locator("#channel-business-account-id").fill(setup["waba"])
    page.locator("#channel-access-token").fill(TOKEN)
    page.locator("#channel-app-secret").fill(SECRET)
    page.locator("#channel-api-base-url").fill(setup["url"])
    page.locator("#channel-messages-per-second").fill("5000")
    page.locator("#channel-form-submit").click()
    error = page.locator("#channel-form-error")
    expect(error).to_contain_text("The phone number ID must contain digits only.")
    expect(error).to_contain_text("Messages per second must be a whole number from 1 to 1000")
    shoot(page, "channels-connect-dialog-errors")

    page.locator("#channel-phone-number-id").fill(setup["pnid"])  # what the admin typed is still there
    page.locator("#channel-messages-per-second").fill("40")
    page.locator("#channel-form-submit").click()
    expect(dialog).to_have_count(0)
    expect(page.get_by_text("E2E Shop is connected (Hubcast Sandbox).")).to_be_visible()
    row = page.locator("#channels-table tbody tr").filter(has_text="E2E Shop")
    expect(row.locator(".rt-Badge", has_text=re.compile("^connected$"))).to_be_visible()
    expect(row).to_contain_text("+1 555 010 0000")
    expect(row).to_contain_text("40 msg/s")
    # The generated verify token is shown once, beside the callback URL, for Meta's webhook form.
    expect(page.locator("#webhook-card")).to_contain_text("Finish connecting E2E Shop")
    token_input = page.locator("#webhook-verify-token")
    expect(token_input).to_be_visible()
    expect(token_input).to_have_value(re.compile(r"^[A-Za-z0-9_-]{24,}$"))
    verify_token = token_input.input_value()
    shoot(page, "channels-connected-webhook-setup")
    page.locator("#webhook-setup-done").click()
    expect(token_input).to_be_hidden()

    channel_id = row.locator("button", has_text="Edit").get_attribute("id").rsplit("-", 1)[1]
    page.locator(f"#edit-channel-{channel_id}").click()
    expect(dialog).to_be_visible()
    expect(page.locator("#channel-name")).to_have_value("E2E Shop")
    expect(page.locator("#channel-access-token")).to_have_value("")  # write-only: never sent back
    expect(dialog.locator(".rt-Badge", has_text=re.compile("^set$"))).to_have_count(3)
    # Left empty on connect: the connection test filled the display name with Meta's verified name.
    display_name = dialog.get_by_label("Display name", exact=True)
    expect(display_name).to_have_value("Hubcast Sandbox")
    shoot(page, "channels-edit-dialog")
    display_name.fill("  E2E Corner   Shop ")
    page.locator("#channel-messages-per-second").fill("120")
    page.locator("#channel-form-submit").click()
    expect(page.get_by_text("E2E Shop updated.")).to_be_visible()
    expect(row).to_contain_text("120 msg/s")

    page.locator(f"#test-channel-{channel_id}").click()
    expect(page.get_by_text("E2E Shop is connected (Hubcast Sandbox).").first).to_be_visible()
    # The test did not overwrite the name the admin typed (saved trimmed by the server).
    page.locator(f"#edit-channel-{channel_id}").click()
    expect(display_name).to_have_value("E2E Corner Shop")
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)

    page.locator(f"#disconnect-channel-{channel_id}").click()
    page.locator("#confirm-disconnect").click()
    expect(row.locator(".rt-Badge", has_text=re.compile("^disconnected$"))).to_be_visible()
    expect(page.locator(f"#disconnect-channel-{channel_id}")).to_have_count(0)
    expect(page.locator(f"#test-channel-{channel_id}")).to_have_text("Reconnect")
    shoot(page, "channels-after-disconnect")

    html = page.content()
    for secret in (TOKEN, SECRET, verify_token):
        assert secret not in html, "a channel secret is in the page HTML"
    for secret in (TOKEN, SECRET):
        assert not any(secret in frame for frame in frames), "a channel secret was sent to the browser"
    # The generated verify token travelled exactly once: the event that filled its input.
    assert sum(verify_token in frame for frame in frames) == 1


# --- Templates -----------------------------------------------------------------------------------


def test_admin_syncs_the_sandbox_templates(page, login_as, setup, shoot):
    login_as(page, "admin")
    _open(page, "#nav-templates", "Templates")
    table = page.locator("#templates-table")
    expect(table.get_by_text("spring_sale", exact=True)).to_be_visible()
    expect(table.get_by_text("e2e_welcome", exact=True)).to_have_count(0)

    page.locator(f"#sync-templates-{setup['sandbox_id']}").click()
    expect(
        page.get_by_text(re.compile(r"^Sandbox: \d+ templates fetched; 3 new, 0 updated, \d+ unchanged\.$"))
    ).to_be_visible()
    expect(table.get_by_text("e2e_welcome", exact=True)).to_have_count(2)
    paused = table.locator("tbody tr").filter(has_text="e2e_paused_offer")
    expect(paused.locator(".rt-Badge", has_text=re.compile("^PAUSED$"))).to_be_visible()
    shoot(page, "templates-after-sync")

    page.locator("#template-status-filter").click()
    page.get_by_role("option", name="Paused").click()
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table).to_contain_text("e2e_paused_offer")
    shoot(page, "templates-filtered-paused")


def test_a_template_detail_shows_its_variables_and_a_preview(page, login_as, setup, shoot):
    login_as(page, "basic")
    _open(page, "#nav-templates", "Templates")
    page.locator("#templates-table").get_by_text("spring_sale", exact=True).click()
    detail = page.locator("#template-detail")
    expect(detail).to_be_visible()
    expect(page.locator("#template-detail-name")).to_have_text("spring_sale")
    rows = page.locator("#template-variables tbody tr")
    expect(rows).to_have_count(4)
    expect(rows.nth(0)).to_contain_text("{{1}}")
    expect(rows.nth(0)).to_contain_text("Header")
    expect(rows.nth(0)).to_contain_text("25%")
    expect(rows.nth(3)).to_contain_text("body.3")
    expect(rows.nth(3)).to_contain_text("March 31")
    expect(page.locator("#template-preview-header")).to_have_text("Spring Sale: 25% off")
    expect(page.locator("#template-preview-body")).to_contain_text("Hi Maria, our Spring Sale is on! Use code SPRING25")
    expect(page.locator("#template-preview-footer")).to_have_text("Reply STOP to opt out")
    shoot(page, "template-detail")


def test_advanced_user_writes_a_sandbox_template_and_sees_it_approved(page, login_as, setup, shoot):
    login_as(page, "advanced")
    _open(page, "#nav-templates", "Templates")
    page.locator("#new-template").click()
    dialog = page.locator("#new-template-dialog")
    expect(dialog).to_be_visible()

    page.locator("#template-name").fill("Bad Name")
    page.locator("#template-body").fill("Hi {{1}}, your {{3}} is ready for pickup.")
    expect(page.locator("#template-examples")).to_be_visible()
    page.locator("#template-form-submit").click()
    errors = page.locator("#template-form-errors")
    expect(errors).to_contain_text("may only contain lowercase letters, digits and underscores")
    expect(errors).to_contain_text("numbered consecutively")
    expect(errors).to_contain_text("Give an example value for every variable")
    shoot(page, "template-new-errors")

    page.locator("#template-name").fill("e2e_pickup_ready")
    page.locator("#template-header").fill("Order {{1}}")
    page.locator("#template-body").fill("Hi *{{1}}*, your order {{2}} is ready for pickup.")
    page.locator("#template-footer").fill("Reply STOP to opt out")
    page.locator("#template-button-1").fill("On my way")
    page.locator("#template-example-header-1").fill("#4821")
    page.locator("#template-example-body-1").fill("Maria")
    page.locator("#template-example-body-2").fill("#4821")
    expect(page.locator("#draft-preview-body")).to_have_text("Hi Maria, your order #4821 is ready for pickup.")
    expect(page.locator("#draft-preview-header")).to_have_text("Order #4821")
    expect(page.locator("#draft-preview .wa-preview-button")).to_have_text("On my way")
    # From the Sandbox channel's display name and profile initials, as in the wizard (issue 15 point 11).
    expect(page.locator("#draft-preview-business")).to_have_text("Hubcast Sandbox")
    expect(page.locator("#draft-preview-initials")).to_have_text("HS")
    shoot(page, "template-new-preview")
    page.locator("#template-form-submit").click()

    expect(dialog).to_have_count(0)
    expect(page.get_by_text("Template e2e_pickup_ready (en_US) created: APPROVED on Sandbox.")).to_be_visible()
    row = page.locator("#templates-table tbody tr").filter(has_text="e2e_pickup_ready")
    expect(row.locator(".rt-Badge", has_text=re.compile("^APPROVED$"))).to_be_visible()
    with Session(setup["engine"]) as s:
        stored = s.execute(text("SELECT components FROM templates WHERE name = 'e2e_pickup_ready'")).scalar_one()
    components = json.loads(stored) if isinstance(stored, str) else stored
    assert [c["type"] for c in components] == ["HEADER", "BODY", "FOOTER", "BUTTONS"]  # Meta's shape
    assert components[1]["example"] == {"body_text": [["Maria", "#4821"]]}


def test_basic_user_sees_no_connect_sync_or_new_buttons(page, login_as, setup, shoot):
    login_as(page, "basic")
    _open(page, "#nav-templates", "Templates")
    expect(page.locator("#templates-table tbody tr").first).to_be_visible()
    expect(page.locator("#template-channels")).to_contain_text("Sandbox")
    expect(page.locator("#new-template")).to_have_count(0)
    expect(page.locator("[id^='sync-templates-']")).to_have_count(0)
    shoot(page, "templates-basic")

    _open(page, "#nav-channels", "Channels")
    expect(page.locator("#channels-table tbody tr").first).to_be_visible()
    expect(page.locator("#connect-channel")).to_have_count(0)
    expect(page.locator("[id^='test-channel-'], [id^='edit-channel-'], [id^='disconnect-channel-']")).to_have_count(0)
    expect(page.locator("#webhook-card")).to_have_count(0)
    shoot(page, "channels-basic")
