"""Campaign drafts as the wizard uses them: create, each step, resume, duplicate, delete, refusals.

What a user would notice: a draft exists once it has a name, "Next" says why it is disabled, a bad
mapping or a foreign template is refused and changes nothing, a basic user sends to an existing
audience but cannot use a file, and a template that lost its approval stops the send."""

from __future__ import annotations

import pytest
from sqlmodel import select

from app.domain.permissions import PermissionDenied
from app.models import AuditLog, Campaign, CampaignRecipient
from app.services.audiences import uploads
from app.services.audiences.csv_reader import check_csv
from app.services.campaigns import drafts as svc
from app.services.campaigns.design_preview import design_preview
from app.services.sending.lifecycle import SendingError, start_campaign
from tests.support.factories import MAPPING, make_channel, make_list, make_template, number


@pytest.fixture()
def env(session, make_user, redis_client):
    channel = make_channel(session, "http://127.0.0.1:9")
    template = make_template(session, channel)
    clist = make_list(session, [number(i) for i in range(4)], first_name=lambda i: "" if i == 1 else f"Ana{i}")
    return {
        "channel": channel,
        "template": template,
        "list": clist,
        "basic": make_user("basic"),
        "advanced": make_user("advanced"),
    }


def _ready_draft(session, env, actor):
    draft = svc.create_draft(session=session, actor=actor, name="Spring sale")
    svc.update_setup(
        session=session,
        actor=actor,
        campaign_id=draft.id,
        name="Spring sale",
        audience_kind="list",
        audience_ref=env["list"].id,
        channel_id=env["channel"].id,
    )
    svc.update_design(
        session=session, actor=actor, campaign_id=draft.id, template_id=env["template"].id, mapping=MAPPING
    )
    session.commit()
    return draft


def test_draft_lifecycle_and_reasons_next_is_disabled(session, env):
    user = env["basic"]
    draft = svc.create_draft(session=session, actor=user, name="  Spring   sale ")
    session.commit()
    assert draft.status == "draft" and draft.name == "Spring sale" and draft.created_by_id == user.id
    assert svc.step_problems(session=session, actor=user, campaign_id=draft.id, step=1) == [
        "Choose the audience.",
        "Choose the WhatsApp channel to send from.",
    ]

    svc.update_setup(
        session=session,
        actor=user,
        campaign_id=draft.id,
        name="Spring sale",
        audience_kind="list",
        audience_ref=env["list"].id,
        channel_id=env["channel"].id,
    )
    svc.set_wizard_step(session=session, actor=user, campaign_id=draft.id, step=2)
    session.commit()
    assert svc.step_problems(session=session, actor=user, campaign_id=draft.id, step=1) == []
    assert svc.step_problems(session=session, actor=user, campaign_id=draft.id, step=2) == ["Choose a template."]

    svc.update_design(session=session, actor=user, campaign_id=draft.id, template_id=env["template"].id, mapping={})
    problems = svc.step_problems(session=session, actor=user, campaign_id=draft.id, step=2)
    assert problems and problems[0].startswith("Say where the value of {{1}}")

    svc.update_design(
        session=session,
        actor=user,
        campaign_id=draft.id,
        template_id=env["template"].id,
        mapping={**MAPPING, "body.1": {"source": "field", "key": "first_name", "fallback": ""}},
    )
    session.commit()
    assert svc.step_problems(session=session, actor=user, campaign_id=draft.id, step=3) == []
    preview = design_preview(session=session, actor=user, campaign_id=draft.id)
    assert preview.examined == 4 and preview.skipped == 1  # Ana1 has no first name and no fallback
    assert preview.samples[0]["values"]["body.1"] == "Ana0"

    resumed = svc.get_draft(session=session, actor=user, campaign_id=draft.id)
    assert resumed.wizard_step == 2 and resumed.template_id == env["template"].id
    actions = set(session.exec(select(AuditLog.action).where(AuditLog.target_id == str(draft.id))).all())
    assert {"campaign.create", "campaign.setup", "campaign.design"} <= actions


def test_bad_input_is_refused_and_changes_nothing(session, env):
    user = env["basic"]
    draft = _ready_draft(session, env, user)
    before = (draft.name, draft.audience_list_id, draft.template_id, dict(draft.variable_mapping))
    with pytest.raises(svc.CampaignError, match="Give the campaign a name"):
        svc.create_draft(session=session, actor=user, name="   ")
    with pytest.raises(svc.CampaignError, match="no longer exists"):
        svc.update_setup(
            session=session,
            actor=user,
            campaign_id=draft.id,
            name="X",
            audience_kind="list",
            audience_ref=999999,
            channel_id=env["channel"].id,
        )
    with pytest.raises(svc.CampaignError, match="no variable"):
        svc.update_design(
            session=session,
            actor=user,
            campaign_id=draft.id,
            template_id=env["template"].id,
            mapping={"body.9": {"source": "text", "value": "x"}},
        )
    with pytest.raises(svc.CampaignError, match="not a contact field"):
        svc.update_design(
            session=session,
            actor=user,
            campaign_id=draft.id,
            template_id=env["template"].id,
            mapping={"body.1": {"source": "field", "key": "password"}},
        )
    other = make_channel(session, "http://127.0.0.1:8")
    foreign = make_template(session, other, name="other_channel")
    with pytest.raises(svc.CampaignError, match="belongs to another channel"):
        svc.update_design(session=session, actor=user, campaign_id=draft.id, template_id=foreign.id)
    pending = make_template(session, env["channel"], name="pending_one", status="PENDING")
    with pytest.raises(svc.CampaignError, match="not approved"):
        svc.update_design(session=session, actor=user, campaign_id=draft.id, template_id=pending.id)
    session.rollback()
    again = session.get(Campaign, draft.id)
    assert (again.name, again.audience_list_id, again.template_id, dict(again.variable_mapping)) == before


def test_basic_user_cannot_use_a_file_audience(session, env, tmp_path):
    user = env["basic"]
    draft = svc.create_draft(session=session, actor=user, name="File")
    session.commit()
    with open(tmp_path / "a.csv", "wb") as fh:
        fh.write(b"phone;first_name\n+33612345678;Ana\n")
    with open(tmp_path / "a.csv", "rb") as fh:
        stored = uploads.store_upload(fh, original_name="a.csv", purpose=svc.UPLOAD_PURPOSE)
    check = check_csv(stored.path)
    with pytest.raises(PermissionDenied):
        svc.register_upload(session=session, actor=user, path=str(stored.path), original_name="a.csv", check=check)
    upload = svc.register_upload(
        session=session, actor=env["advanced"], path=str(stored.path), original_name="a.csv", check=check
    )
    session.commit()
    assert upload.delimiter == ";" and upload.valid_count == 1 and upload.columns == ["phone", "first_name"]
    with pytest.raises(PermissionDenied):
        svc.update_setup(
            session=session,
            actor=user,
            campaign_id=draft.id,
            name="File",
            audience_kind="csv",
            audience_ref=upload.id,
            channel_id=env["channel"].id,
        )


def test_csv_mapping_uses_columns(session, env, tmp_path):
    user = env["advanced"]
    (tmp_path / "b.csv").write_bytes(b"phone;city\n+33612345678;Lyon\n+33612345679;\nbad;x\n")
    with open(tmp_path / "b.csv", "rb") as fh:
        stored = uploads.store_upload(fh, original_name="b.csv", purpose=svc.UPLOAD_PURPOSE)
    upload = svc.register_upload(
        session=session, actor=user, path=str(stored.path), original_name="b.csv", check=check_csv(stored.path)
    )
    draft = svc.create_draft(session=session, actor=user, name="CSV")
    svc.update_setup(
        session=session,
        actor=user,
        campaign_id=draft.id,
        name="CSV",
        audience_kind="csv",
        audience_ref=upload.id,
        channel_id=env["channel"].id,
    )
    with pytest.raises(svc.CampaignError, match="no column"):
        svc.update_design(
            session=session,
            actor=user,
            campaign_id=draft.id,
            template_id=env["template"].id,
            mapping={"body.1": {"source": "column", "key": "first_name"}},
        )
    mapping = {**MAPPING, "body.1": {"source": "column", "key": "city", "fallback": ""}}
    svc.update_design(
        session=session, actor=user, campaign_id=draft.id, template_id=env["template"].id, mapping=mapping
    )
    session.commit()
    preview = design_preview(session=session, actor=user, campaign_id=draft.id)
    assert preview.examined == 2 and preview.skipped == 1
    assert preview.samples[0]["values"]["body.1"] == "Lyon"


def test_duplicate_and_delete(session, env):
    user = env["basic"]
    draft = _ready_draft(session, env, user)
    copy = svc.duplicate_campaign(session=session, actor=user, campaign_id=draft.id)
    session.commit()
    assert copy.id != draft.id and copy.status == "draft" and copy.name == "Copy of Spring sale"
    assert copy.template_id == draft.template_id and copy.variable_mapping == draft.variable_mapping
    svc.delete_draft(session=session, actor=user, campaign_id=copy.id)
    session.commit()
    assert session.get(Campaign, copy.id) is None
    start_campaign(session=session, actor=user, campaign_id=draft.id)  # a basic user CAN send
    with pytest.raises(svc.CampaignError, match="Only drafts can be deleted"):
        svc.delete_draft(session=session, actor=user, campaign_id=draft.id)
    with pytest.raises(svc.CampaignError, match="no longer a draft"):
        svc.update_setup(session=session, actor=user, campaign_id=draft.id, name="Changed")
    assert session.get(Campaign, draft.id).status == "sending"
    frozen = session.exec(select(CampaignRecipient).where(CampaignRecipient.campaign_id == draft.id)).all()
    assert len(frozen) == 4


def test_sending_refused_when_template_no_longer_approved(session, env):
    user = env["basic"]
    draft = _ready_draft(session, env, user)
    env["template"].status = "PAUSED"
    session.add(env["template"])
    session.commit()
    problems = svc.step_problems(session=session, actor=user, campaign_id=draft.id, step=3)
    assert any("not approved" in p for p in problems)
    with pytest.raises(SendingError, match="not approved"):
        start_campaign(session=session, actor=user, campaign_id=draft.id)
    assert session.get(Campaign, draft.id).status == "draft"


def test_refusals_for_users_without_the_capability(session, env, make_user):
    inactive = make_user("admin", active=False)
    with pytest.raises(PermissionDenied):
        svc.create_draft(session=session, actor=inactive, name="Nope")
    with pytest.raises(PermissionDenied):
        svc.create_draft(session=session, actor=None, name="Nope")
    assert session.exec(select(Campaign)).all() == []
