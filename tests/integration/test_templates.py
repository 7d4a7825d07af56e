"""Templates: sync from a real Sandbox process over HTTP (paged), idempotence, status changes, templates
no longer on the account, writing a Sandbox template, refusals; and `hubcast templates sync`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import pytest
from sqlmodel import select

from app.domain import permissions as perm
from app.domain.template_rules import TemplateDraft
from app.models import AuditLog, Campaign, Channel, Template
from app.services.channels import templates as templates_service
from app.services.channels.templates import TemplateError
from app.settings import PROJECT_ROOT
from app.whatsapp.sandbox.catalog import load_templates
from tests.support.sandbox import ACCOUNT_PNID as PNID
from tests.support.sandbox import ACCOUNT_SECRET as SECRET
from tests.support.sandbox import ACCOUNT_TOKEN as TOKEN
from tests.support.sandbox import ACCOUNT_WABA as WABA
from tests.support.sandbox import run_account_sandbox as running_sandbox

PAGE = 25  # the Sandbox serves 66 templates: 3 pages


@pytest.fixture(scope="module")
def sandbox_url(tmp_path_factory):
    with running_sandbox(tmp_path_factory.mktemp("sandbox")) as sandbox:
        yield sandbox.url


@pytest.fixture()
def sandbox_channel(session, sandbox_url) -> Channel:
    channel = Channel(
        name="Sandbox",
        kind="sandbox",
        status="connected",
        phone_number_id=PNID,
        business_account_id=WABA,
        api_base_url=sandbox_url,
        access_token=TOKEN,
        app_secret=SECRET,
        verify_token="verify-me",
    )
    session.add(channel)
    session.commit()
    return channel


def _templates(session, channel) -> dict[tuple[str, str], Template]:
    session.expire_all()
    return {
        (t.name, t.language): t for t in session.exec(select(Template).where(Template.channel_id == channel.id)).all()
    }


def _sync(session, actor, channel, **kw):
    result = templates_service.sync_templates(session=session, actor=actor, channel_id=channel.id, page_size=PAGE, **kw)
    session.commit()
    return result


# --- sync -------------------------------------------------------------------------------------


def test_sync_pages_through_the_account_and_creates_every_template(session, make_user, sandbox_channel):
    catalogue = load_templates()
    assert len(catalogue) > 3 * PAGE - PAGE + 1  # really more than two pages
    admin = make_user(perm.ADMIN)

    result = _sync(session, admin, sandbox_channel)

    assert (result.fetched, result.created, result.updated, result.unchanged, result.removed) == (
        len(catalogue),
        len(catalogue),
        0,
        0,
        0,
    )
    stored = _templates(session, sandbox_channel)
    assert set(stored) == {(t["name"], t["language"]) for t in catalogue}
    by_key = {(t["name"], t["language"]): t for t in catalogue}
    for key, template in stored.items():
        remote = by_key[key]
        assert (template.status, template.category, template.components, template.external_id) == (
            remote["status"],
            remote["category"],
            remote["components"],
            remote["id"],
        )
        assert template.parameter_format == remote.get("parameter_format", "POSITIONAL")
        assert template.synced_at is not None
    assert Counter(t.status for t in stored.values()) == Counter(t["status"] for t in catalogue)
    audit = session.exec(select(AuditLog).where(AuditLog.action == "templates.sync")).one()
    assert audit.actor_id == admin.id and audit.detail["created"] == len(catalogue)
    assert (
        result.summary()
        == f"Sandbox: {len(catalogue)} templates fetched; {len(catalogue)} new, 0 updated, 0 unchanged."
    )


def test_a_second_sync_changes_nothing(session, make_user, sandbox_channel):
    advanced = make_user(perm.ADVANCED)
    first = _sync(session, advanced, sandbox_channel)
    before = {k: (t.id, t.updated_at, t.status) for k, t in _templates(session, sandbox_channel).items()}

    second = _sync(session, advanced, sandbox_channel)

    assert (second.created, second.updated, second.removed) == (0, 0, 0)
    assert second.unchanged == first.created == second.fetched
    assert {k: (t.id, t.updated_at, t.status) for k, t in _templates(session, sandbox_channel).items()} == before


def test_seeded_templates_are_matched_by_channel_name_and_language(session, make_user, sandbox_channel):
    """The demo seed stores the same templates the Sandbox serves: a sync recognises them, no duplicates."""
    from app.services.demo_seed import demo_template_rows

    seeded = demo_template_rows(sandbox_channel.id, None)
    session.add_all(seeded)
    session.commit()
    result = _sync(session, make_user(perm.ADMIN), sandbox_channel)
    assert result.unchanged == len(seeded)
    assert result.created == result.fetched - len(seeded)
    assert len(_templates(session, sandbox_channel)) == result.fetched


def test_status_changes_new_and_vanished_templates_are_applied(session, make_user, sandbox_channel, tmp_path):
    admin = make_user(perm.ADMIN)
    _sync(session, admin, sandbox_channel)
    stored = _templates(session, sandbox_channel)
    in_use = stored[("spring_sale", "en_US")]
    session.add(Campaign(name="Uses spring_sale", channel_id=sandbox_channel.id, template_id=in_use.id))
    session.commit()
    local = Template(
        channel_id=sandbox_channel.id,
        name="written_here",
        language="en_US",
        status="APPROVED",
        components=[{"type": "BODY", "text": "Hello"}],
    )
    session.add(local)
    session.commit()

    # The account now: spring_sale is gone, one approved template got paused, one template is new.
    catalogue = [t for t in load_templates() if (t["name"], t["language"]) != ("spring_sale", "en_US")]
    paused = next(t for t in catalogue if t["status"] == "APPROVED" and t["name"].startswith("sandbox_"))
    paused["status"] = "PAUSED"
    catalogue.append(
        {
            "id": "5000000000000001",
            "name": "brand_new",
            "language": "de",
            "status": "PENDING",
            "category": "UTILITY",
            "components": [{"type": "BODY", "text": "Hallo {{1}}!", "example": {"body_text": [["Lea"]]}}],
        }
    )
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps(catalogue))
    with running_sandbox(tmp_path / "changed", templates_file=path) as sandbox:
        sandbox_channel.api_base_url = sandbox.url
        session.add(sandbox_channel)
        session.commit()
        result = _sync(session, admin, sandbox_channel)

    assert (result.created, result.updated, result.removed) == (1, 1, 1)
    after = _templates(session, sandbox_channel)
    assert after[(paused["name"], paused["language"])].status == "PAUSED"
    assert after[("brand_new", "de")].status == "PENDING" and after[("brand_new", "de")].category == "UTILITY"
    # No longer on the account: kept (a campaign points at it) and marked, never deleted.
    assert after[("spring_sale", "en_US")].id == in_use.id and after[("spring_sale", "en_US")].status == "DELETED"
    assert session.get(Campaign, 1).template_id == in_use.id
    # Written in Hubcast (no Meta id): not the account's to remove.
    assert after[("written_here", "en_US")].status == "APPROVED"


def test_a_failed_listing_changes_nothing_and_says_why(session, make_user, sandbox_channel):
    admin = make_user(perm.ADMIN)
    _sync(session, admin, sandbox_channel)
    before = {k: (t.status, t.updated_at) for k, t in _templates(session, sandbox_channel).items()}
    sandbox_channel.access_token = "wrong-token"
    session.add(sandbox_channel)
    session.commit()

    with pytest.raises(TemplateError) as info:
        _sync(session, admin, sandbox_channel)
    session.rollback()

    assert "#190" in str(info.value) and "Invalid OAuth access token" in str(info.value)
    assert {k: (t.status, t.updated_at) for k, t in _templates(session, sandbox_channel).items()} == before


def test_a_disconnected_channel_is_not_synced(session, make_user, sandbox_channel):
    sandbox_channel.status = "disconnected"
    session.add(sandbox_channel)
    session.commit()
    with pytest.raises(TemplateError, match="disconnected"):
        _sync(session, make_user(perm.ADMIN), sandbox_channel)
    assert _templates(session, sandbox_channel) == {}


def test_basic_user_cannot_sync_or_create(session, make_user, sandbox_channel):
    basic = make_user(perm.BASIC)
    with pytest.raises(perm.PermissionDenied):
        _sync(session, basic, sandbox_channel)
    with pytest.raises(perm.PermissionDenied):
        templates_service.create_sandbox_template(
            session=session, actor=basic, channel_id=sandbox_channel.id, draft=_draft()
        )
    assert _templates(session, sandbox_channel) == {}


def test_hubcast_templates_sync_cli(session, sandbox_channel, database_url, tmp_path):
    env = {**os.environ, "DATABASE_URL": database_url, "HUBCAST_DATA_DIR": str(tmp_path / "data")}

    def hubcast(*args):
        return subprocess.run(
            [sys.executable, "-m", "app.cli", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=PROJECT_ROOT,
            timeout=120,
        )

    proc = hubcast("templates", "sync", "--channel", "Sandbox")
    assert proc.returncode == 0, proc.stderr
    total = len(load_templates())
    assert f"Sandbox: {total} templates fetched; {total} new, 0 updated, 0 unchanged." in proc.stdout
    assert len(_templates(session, sandbox_channel)) == total

    again = hubcast("templates", "sync")  # every channel that is not disconnected
    assert again.returncode == 0, again.stderr
    assert f"{total} unchanged" in again.stdout

    unknown = hubcast("templates", "sync", "--channel", "Nope")
    assert unknown.returncode != 0
    assert unknown.stderr.strip().splitlines() == ["hubcast: error: No channel named Nope."]


# --- writing a Sandbox template ---------------------------------------------------------------


def _draft(**changes) -> TemplateDraft:
    base = dict(
        name="autumn_hello",
        language="en_US",
        category="MARKETING",
        body="Hi {{1}}, autumn is here!",
        examples={"body.1": "Maria"},
    )
    return TemplateDraft(**{**base, **changes})


def test_advanced_user_writes_a_sandbox_template_approved_at_once(session, make_user, sandbox_channel):
    advanced = make_user(perm.ADVANCED)
    draft = _draft(
        header="Autumn {{1}}",
        footer="Reply STOP to opt out",
        buttons=("Yes", "No"),
        examples={"header.1": "deals", "body.1": "Maria"},
    )
    template = templates_service.create_sandbox_template(
        session=session, actor=advanced, channel_id=sandbox_channel.id, draft=draft
    )
    session.commit()
    stored = _templates(session, sandbox_channel)[("autumn_hello", "en_US")]
    assert (
        stored.id == template.id and stored.status == "APPROVED" and stored.external_id
    )  # registered with the running Sandbox
    assert [c["type"] for c in stored.components] == ["HEADER", "BODY", "FOOTER", "BUTTONS"]
    assert stored.components[1]["example"] == {"body_text": [["Maria"]]}

    detail = templates_service.template_detail(session=session, actor=make_user(perm.BASIC), template_id=stored.id)
    assert [(v["key"], v["name"], v["example"]) for v in detail["variables"]] == [
        ("header.1", "{{1}}", "deals"),
        ("body.1", "{{1}}", "Maria"),
    ]
    assert detail["sendable"] and detail["channel"] == "Sandbox"
    # Both previews (detail and new-template dialog) say who sends: the display name, else the channel's name.
    assert (detail["business"], detail["initials"]) == ("Sandbox", "S")
    sandbox_channel.display_name = "Corner  Bakery"
    session.add(sandbox_channel)
    session.commit()
    channels = templates_service.template_channels(session=session, actor=advanced)
    assert [(c["business"], c["initials"]) for c in channels] == [("Corner Bakery", "CB")]
    assert templates_service.preview_sender(None) == {"business": "", "initials": ""}
    entry = session.exec(select(AuditLog).where(AuditLog.action == "template.create")).one()
    assert entry.actor_id == advanced.id and entry.detail["name"] == "autumn_hello"

    with pytest.raises(TemplateError, match="already has a template autumn_hello in en_US"):
        templates_service.create_sandbox_template(
            session=session, actor=advanced, channel_id=sandbox_channel.id, draft=draft
        )


@pytest.mark.parametrize(
    ("draft", "message"),
    [
        (_draft(name="Autumn Hello"), "may only contain lowercase letters, digits and underscores"),
        (
            _draft(body="Hi {{1}}, see you on {{3}}, bye.", examples={"body.1": "A", "body.3": "C"}),
            "numbered consecutively",
        ),
        (_draft(examples={}), "Give an example value for every variable"),
    ],
)
def test_invalid_templates_are_refused_and_nothing_is_written(session, make_user, sandbox_channel, draft, message):
    admin = make_user(perm.ADMIN)
    audit_before = len(session.exec(select(AuditLog)).all())
    with pytest.raises(TemplateError) as info:
        templates_service.create_sandbox_template(
            session=session, actor=admin, channel_id=sandbox_channel.id, draft=draft
        )
    session.rollback()
    assert any(message in e for e in info.value.errors), info.value.errors
    assert _templates(session, sandbox_channel) == {}
    assert len(session.exec(select(AuditLog)).all()) == audit_before


def test_templates_of_a_real_number_are_not_written_in_hubcast(session, make_user):
    real = Channel(
        name="Shop",
        kind="whatsapp_cloud",
        status="connected",
        phone_number_id="123",
        business_account_id="456",
        access_token="t",
        app_secret="s",
    )
    session.add(real)
    session.commit()
    with pytest.raises(TemplateError, match="WhatsApp Manager"):
        templates_service.create_sandbox_template(
            session=session, actor=make_user(perm.ADMIN), channel_id=real.id, draft=_draft()
        )
