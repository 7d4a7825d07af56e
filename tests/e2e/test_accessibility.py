"""Accessibility (SPEC S20, issue 15 points 9 and 10): axe-core on every page, wizard step and main dialog finds no
serious or critical violation (the main pages in dark mode too), and the whole wizard can be done with the keyboard alone, focus always visible.

axe-core runs inside the real page (axe-playwright-python injects it), after the page has loaded its data, so it
judges what a person gets: the controls' accessible names, ARIA roles and states, colour contrast. Every check
of a test is run before it fails, so one failure lists everything still wrong on every page it visited.
Campaigns made here are removed afterwards: other e2e modules expect the seed's empty list."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect
from sqlalchemy import select
from sqlmodel import Session

from app.db import make_engine
from app.models import Campaign
from tests.support.e2e import clear_campaigns

pytestmark = pytest.mark.e2e

BLOCKING = ("serious", "critical")
AXE = Axe()


@pytest.fixture(autouse=True, scope="module")
def no_campaigns_left(hubcast):
    yield
    clear_campaigns(hubcast.database_url)


class AxeReport:
    """Runs axe on a page state and keeps the serious/critical violations, named by where they were found."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.checked: list[str] = []

    def check(self, page, where: str) -> None:
        page.wait_for_load_state("networkidle")
        # Colours are judged as they settle: a toast fading in is, for a moment, paler than it will be.
        page.wait_for_function(
            "() => document.getAnimations().every("
            "a => a.playState !== 'running' || a.effect?.getTiming().iterations === Infinity)"
        )
        results = AXE.run(page)
        self.checked.append(where)
        for v in results.response["violations"]:
            if v["impact"] not in BLOCKING:
                continue
            nodes = "\n".join(
                f"      {' '.join(map(str, n['target']))}: {n.get('failureSummary', '').splitlines()[-1].strip()}"
                for n in v["nodes"][:12]
            )
            self.problems.append(f"{where}: {v['id']} ({v['impact']}): {v['help']}\n{nodes}")
            print(self.problems[-1])  # shown with a later failure of the same test, whatever it is

    def assert_clean(self) -> None:
        assert self.checked, "axe checked nothing"
        assert not self.problems, "axe found serious or critical violations:\n" + "\n".join(self.problems)


@pytest.fixture()
def axe_report() -> AxeReport:
    return AxeReport()


def _open(page, nav_name: str, title: str) -> None:
    page.get_by_role("link", name=nav_name, exact=True).first.click()
    expect(page.locator("#page-title")).to_have_text(title)


# --- pages and dialogs ---------------------------------------------------------------------------


def test_login_page_has_no_serious_violation(page, axe_report, submit_login, hubcast):
    page.goto("/login")
    expect(page.get_by_label("Email")).to_be_visible()
    expect(page.get_by_label("Password")).to_be_visible()
    axe_report.check(page, "login")
    submit_login(page, hubcast.accounts["admin"].email, "wrong-password-for-a11y")
    expect(page.locator("#login-error")).to_be_visible()
    axe_report.check(page, "login with an error")
    axe_report.assert_clean()


def _dialog(page, opener: Callable, where: str, axe_report: AxeReport, shoot) -> None:
    opener()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    axe_report.check(page, where)
    shoot(page, f"a11y-{where}")
    page.keyboard.press("Escape")  # a keyboard user closes a dialog the usual way
    expect(dialog).to_have_count(0)


def test_audience_pages_and_dialogs_have_no_serious_violation(page, login_as, axe_report, shoot):
    login_as(page, "admin")
    _open(page, "Contacts", "Contacts")
    expect(page.locator("#contacts-table tbody tr").first).to_be_visible()
    axe_report.check(page, "contacts")
    _dialog(page, lambda: page.locator("#import-contacts").click(), "contacts-import", axe_report, shoot)
    _dialog(page, lambda: page.locator("#add-contact").click(), "contacts-new-contact", axe_report, shoot)
    page.locator("#contacts-table tbody tr").first.locator("button, [role=checkbox]").first.click()
    page.locator("#add-to-list").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    axe_report.check(page, "contacts-add-to-list")
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)

    _open(page, "Lists", "Lists")
    expect(page.locator("#lists-table tbody tr").first).to_be_visible()
    axe_report.check(page, "lists")
    _dialog(page, lambda: page.locator("#create-list").click(), "lists-new-list", axe_report, shoot)
    page.locator("#lists-table tbody tr .list-link").first.click()
    expect(page.locator("#list-members-table tbody tr").first).to_be_visible()
    axe_report.check(page, "list-detail")

    _open(page, "Segments", "Segments")
    expect(page.locator("#segments-table tbody tr").first).to_be_visible()
    axe_report.check(page, "segments")
    page.locator("#create-segment").click()
    expect(page.locator("#page-title")).to_have_text("New segment")
    axe_report.check(page, "segments-new-segment")
    axe_report.assert_clean()


def test_setup_pages_and_dialogs_have_no_serious_violation(page, login_as, axe_report, shoot):
    login_as(page, "admin")
    _open(page, "Dashboard", "Dashboard")
    expect(page.locator("#dashboard-period")).to_be_visible()  # loaded: the figures and the chart are shown
    axe_report.check(page, "dashboard")
    _open(page, "Templates", "Templates")
    expect(page.locator("#templates-table tbody tr").first).to_be_visible()
    axe_report.check(page, "templates")
    _dialog(page, lambda: page.locator("#new-template").click(), "templates-new-template", axe_report, shoot)

    _open(page, "Channels", "Channels")
    expect(page.locator("#channels-table tbody tr").first).to_be_visible()
    axe_report.check(page, "channels")
    _dialog(page, lambda: page.locator("#connect-channel").click(), "channels-connect", axe_report, shoot)

    _open(page, "Users", "Users")
    expect(page.locator("#users-table tbody tr").first).to_be_visible()
    axe_report.check(page, "users")
    _dialog(page, lambda: page.locator("#add-user").click(), "users-add-user", axe_report, shoot)
    page.locator("#open-audit-log").click()
    expect(page.locator("#page-title")).to_have_text("Audit log")
    axe_report.check(page, "audit-log")
    axe_report.assert_clean()


def _pick(page, trigger, option: str) -> None:
    trigger.click()
    page.get_by_role("option", name=option, exact=True).click()


def test_wizard_steps_and_campaign_pages_have_no_serious_violation(page, login_as, axe_report, shoot, hubcast):
    login_as(page, "admin")
    axe_report.check(page, "all-campaigns-empty")
    page.locator("#start-campaign, #create-campaign").first.click()
    expect(page).to_have_url(re.compile(r"/campaigns/new$"))
    axe_report.check(page, "wizard-setup-empty")
    page.locator("#wizard-name").fill("A11y check")
    page.locator("#wizard-name").press("Tab")
    # Clicking a radio's text selects it (the text is the radio's <label>).
    page.get_by_text("Import from a file", exact=True).click()
    expect(page.get_by_role("radio", name="Import from a file")).to_be_checked()
    expect(page.get_by_text("Drop a CSV file here")).to_be_visible()
    axe_report.check(page, "wizard-setup-file")
    page.get_by_text("Select from contact lists", exact=True).click()
    expect(page.get_by_role("radio", name="Select from contact lists")).to_be_checked()
    _pick(page, page.get_by_label("Contact list", exact=True), "VIP customers")
    expect(page.locator("#wizard-summary-name")).to_have_text("VIP customers")
    axe_report.check(page, "wizard-setup-list")
    page.locator("#wizard-next").click()

    expect(page.locator("#wizard-template")).to_be_visible()
    axe_report.check(page, "wizard-design-empty")
    _pick(page, page.locator("#wizard-template"), "order_update · en_US")
    for key, option, text in (
        ("body.1", "first_name", "friend"),
        ("body.2", "The same text for everyone", "#48213"),
        ("body.3", "The same text for everyone", "Friday"),
    ):
        _pick(page, page.locator(f'[id="wizard-var-{key}"]'), option)
        page.locator(f'[id="wizard-fallback-{key}"]').fill(text)
        page.locator(f'[id="wizard-fallback-{key}"]').press("Tab")
    expect(page.locator("#wizard-next")).to_be_enabled()
    axe_report.check(page, "wizard-design-mapped")
    page.locator("#wizard-next").click()

    expect(page.locator("#wizard-review-name")).to_contain_text("A11y check")
    axe_report.check(page, "wizard-review")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_role("alertdialog")).to_be_visible()
    axe_report.check(page, "wizard-send-dialog")
    page.keyboard.press("Escape")
    expect(page.get_by_role("alertdialog")).to_have_count(0)
    # Scheduled a year ahead, never sent: a send's late status webhooks would outlive this module's cleanup.
    page.get_by_role("button", name="Schedule", exact=True).click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    axe_report.check(page, "wizard-schedule-dialog")
    dialog.get_by_label("Date", exact=True).fill(f"{datetime.now().year + 1}-01-15")
    dialog.get_by_label("Time", exact=True).fill("10:00")
    expect(page.locator("#wizard-schedule-utc")).to_contain_text(f"{datetime.now().year + 1}-01-15")
    dialog.get_by_role("button", name="Schedule", exact=True).click()

    expect(page).to_have_url(re.compile(r"/campaigns/?$"))
    expect(page.locator("[id^=campaign-row-]").first).to_be_visible()
    axe_report.check(page, "all-campaigns")
    page.get_by_role("link", name="A11y check").click()
    expect(page.locator("#campaign-name")).to_have_text("A11y check")
    axe_report.check(page, "campaign-page")
    axe_report.assert_clean()


# --- dark mode ----------------------------------------------------------------------------------------

# (menu link, page title, what shows once the page has its data)
MAIN_PAGES = [
    ("Dashboard", "Dashboard", "#dashboard-period"),
    ("All Campaigns", "All Campaigns", "#page-title"),
    ("Contacts", "Contacts", "#contacts-table tbody tr"),
    ("Lists", "Lists", "#lists-table tbody tr"),
    ("Segments", "Segments", "#segments-table tbody tr"),
    ("Templates", "Templates", "#templates-table tbody tr"),
    ("Channels", "Channels", "#channels-table tbody tr"),
    ("Users", "Users", "#users-table tbody tr"),
]


def test_dark_mode_pages_have_no_serious_violation_and_the_menu_spans_long_pages(page, login_as, axe_report, shoot):
    """The menu's colour-mode button switches the whole app to dark; every main page and its main dialog stay
    readable (contrast) there too. On the longest page, scrolled to the bottom, the menu is still in view and its
    column runs down the whole page."""
    login_as(page, "admin")
    page.get_by_role("button", name="Switch light or dark mode").click()
    expect(page.locator("html")).to_have_class(re.compile(r"\bdark\b"))
    for nav_name, title, ready in MAIN_PAGES:
        _open(page, nav_name, title)
        expect(page.locator(ready).first).to_be_visible()
        axe_report.check(page, f"dark-{title}")
        if title == "Contacts":  # 50 rows: far taller than the window
            page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
            page.wait_for_function(
                "() => scrollY > 0 && scrollY + innerHeight >= document.documentElement.scrollHeight - 2"
            )
            expect(page.locator("#nav-dashboard")).to_be_in_viewport()  # sticky: the menu stays in view
            expect(page.locator("#logout-button")).to_be_in_viewport()
            column = page.locator("#sidebar").bounding_box()
            page_height = page.evaluate("document.documentElement.scrollHeight")
            assert column["height"] >= page_height - 1, (column, page_height)  # its background reaches the bottom
            shoot(page, "dark-contacts-scrolled")
        if title == "Templates":
            _dialog(page, lambda: page.locator("#new-template").click(), "dark-new-template", axe_report, shoot)
        if title == "Channels":
            _dialog(page, lambda: page.locator("#connect-channel").click(), "dark-channels-connect", axe_report, shoot)
    page.locator("#nav-campaigns").click()
    page.locator("#start-campaign, #create-campaign").first.click()
    expect(page).to_have_url(re.compile(r"/campaigns/new$"))
    axe_report.check(page, "dark-wizard-setup")
    expect(page.locator("html")).to_have_class(re.compile(r"\bdark\b"))  # kept across pages
    axe_report.assert_clean()


# --- the wizard with the keyboard alone -------------------------------------------------------------

# The focus ring of an element: the outline and box-shadow of the element, of its ::before (Radix rings a radio
# there) and of its parent (Radix rings a text field's wrapper, through :focus-within). Compared before and after
# focus, so a permanent shadow does not count.
RING_JS = """el => [[el, null], [el, '::before'], [el.parentElement, null]].map(([e, pseudo]) => {
    const s = getComputedStyle(e, pseudo);
    return [s.outlineStyle, s.outlineWidth, s.outlineColor, s.boxShadow].join(' ');
}).join(' | ')"""


def _tab_to(page, target, shoot=None, name: str = "") -> None:
    """Press Tab (at most 30 times) until `target` has the focus, and check the focus is visible on it."""
    before = target.evaluate(RING_JS)
    for _ in range(30):
        page.keyboard.press("Tab")
        if target.evaluate("el => el === document.activeElement"):
            break
    expect(target).to_be_focused()
    after = target.evaluate(RING_JS)
    assert after != before, f"no visible focus on {name or target}: {after}"
    assert re.search(r"solid|rgba?\(.*\) 0px 0px 0px [1-9]", after), f"no focus ring on {name or target}: {after}"
    if shoot and name:
        shoot(page, f"a11y-focus-{name}")


def _choose_by_keyboard(page, trigger, option: str) -> None:
    """Open a select with the keyboard, move to `option` with the arrows, and pick it with Enter."""
    page.keyboard.press("Enter")
    listbox = page.get_by_role("listbox")
    expect(listbox).to_be_visible()
    target = page.get_by_role("option", name=option, exact=True)
    for _ in range(40):
        if target.evaluate("el => el === document.activeElement || el.hasAttribute('data-highlighted')"):
            break
        page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(listbox).to_have_count(0)
    expect(trigger).to_contain_text(option)
    expect(trigger).to_be_focused()


def test_the_whole_wizard_with_the_keyboard_alone(page, login_as, hubcast, shoot):
    login_as(page, "admin")
    create = page.get_by_role("link", name="Create").first
    _tab_to(page, create, shoot, "create-link")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/campaigns/new$"))

    name = page.get_by_label("Campaign name", exact=True)
    _tab_to(page, name, shoot, "campaign-name")
    page.keyboard.type("Keyboard only")

    # The radio group is one Tab stop (the chosen kind); the arrows move the choice.
    segment = page.get_by_role("radio", name="Select from a contact segment")
    expect(segment).to_be_checked()
    _tab_to(page, segment, shoot, "audience-radio")
    # Held as a person holds a key: Radix moves the focus a tick after keydown and checks the radio it lands on
    # only while the arrow is still down (an instant press-and-release moves the focus without choosing).
    lists = page.get_by_role("radio", name="Select from contact lists")
    page.keyboard.down("ArrowUp")
    expect(lists).to_be_focused()
    page.keyboard.up("ArrowUp")
    expect(lists).to_be_checked()

    contact_list = page.get_by_label("Contact list", exact=True)
    _tab_to(page, contact_list, shoot, "list-select")
    _choose_by_keyboard(page, contact_list, "VIP customers")
    expect(page.locator("#wizard-summary-name")).to_have_text("VIP customers")
    expect(page.get_by_label("Channel", exact=True)).to_contain_text("Sandbox")

    next_button = page.get_by_role("button", name="Next", exact=True)
    _tab_to(page, next_button, shoot, "next-button")
    page.keyboard.press("Enter")

    template = page.get_by_label("Template", exact=True)
    _tab_to(page, template, shoot, "template-select")
    _choose_by_keyboard(page, template, "order_update · en_US")
    for label, option, text in (
        ("{{1}}", "first_name", "friend"),
        ("{{2}}", "The same text for everyone", "#48213"),
        ("{{3}}", "The same text for everyone", "Friday"),
    ):
        source = page.get_by_label(f"Value for {label}", exact=True)
        _tab_to(page, source, shoot, f"variable-{label[2]}")
        _choose_by_keyboard(page, source, option)
        value = page.get_by_label(re.compile(rf"^(Fallback|Text) for {re.escape(label)}$"))
        _tab_to(page, value, shoot, f"fallback-{label[2]}")
        page.keyboard.type(text)
    page.keyboard.press("Tab")  # leaving the last box saves it
    expect(page.locator("#wizard-preview")).to_contain_text("#48213")
    next_button = page.get_by_role("button", name="Next", exact=True)
    expect(next_button).to_be_enabled()
    _tab_to(page, next_button, shoot, "design-next")
    page.keyboard.press("Enter")

    expect(page.locator("#wizard-review-name")).to_contain_text("Keyboard only")
    # Scheduled (a year ahead), not sent: a send's late status webhooks would outlive this module's cleanup.
    schedule = page.get_by_role("button", name="Schedule", exact=True)
    _tab_to(page, schedule, shoot, "schedule-button")
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    year = datetime.now().year + 1
    date = dialog.get_by_label("Date", exact=True)
    _tab_to(page, date, shoot, "schedule-date")
    page.keyboard.type(f"0115{year}")  # the browser's date box (en-US: month, day, year)
    time = dialog.get_by_label("Time", exact=True)
    _tab_to(page, time, shoot, "schedule-time")
    page.keyboard.type("1000A")  # 10:00 AM
    expect(page.locator("#wizard-schedule-utc")).to_contain_text(f"{year}-01-15")
    confirm = dialog.get_by_role("button", name="Schedule", exact=True)
    _tab_to(page, confirm, shoot, "schedule-confirm")
    page.keyboard.press("Enter")

    expect(page).to_have_url(re.compile(r"/campaigns/?$"))
    expect(page.get_by_role("link", name="Keyboard only")).to_be_visible()
    engine = make_engine(hubcast.database_url)
    try:
        with Session(engine) as s:
            campaign = s.execute(select(Campaign).where(Campaign.name == "Keyboard only")).scalars().one()
            assert campaign.status == "scheduled", campaign.status
    finally:
        engine.dispose()
