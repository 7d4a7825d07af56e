"""A CSV file as a campaign's audience in one call (the wizard's "Import from a file"): stored, checked and
registered on the draft; any refusal leaves no file, no upload row and no change to the draft."""

from __future__ import annotations

import io

import pytest
from sqlmodel import select

from app.domain import permissions as perm
from app.models import AudienceUpload, Campaign
from app.services.campaigns import csv_audience, drafts
from app.settings import get_settings

GOOD = b"phone;first_name\n+33612345678;Ana\n+33612345678;Ana again\n0612;Bad\n+14155550123;John\n"


def _stored_files() -> list:
    folder = get_settings().upload_dir / drafts.UPLOAD_PURPOSE
    return sorted(folder.glob("*")) if folder.exists() else []


def test_a_checked_file_becomes_the_audience_of_a_new_draft(session, make_user):
    user = make_user("advanced")
    attached = csv_audience.attach_csv(
        session=session,
        actor=user,
        source=io.BytesIO(GOOD),
        original_name="spring.csv",
        campaign_id=None,
        name="Spring",
    )
    session.commit()
    campaign = session.get(Campaign, attached.campaign_id)
    upload = session.get(AudienceUpload, attached.upload_id)
    assert campaign.name == "Spring" and campaign.audience_kind == "csv"
    assert campaign.audience_upload_id == upload.id and upload.original_filename == "spring.csv"
    assert attached.summary == {
        "file": "spring.csv",
        "rows": "4",
        "reach": "2",
        "invalid": "1",
        "duplicates": "1",
        "delimiter": f"{attached.check.delimiter_name} (;)",
        "columns": "phone, first_name",
    }
    assert [r["line"] for r in attached.invalid_rows] == ["4"]
    assert len(_stored_files()) == 1


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("people.xlsx", GOOD, "is not a CSV file"),
        ("people.csv", b"name,city\nAna,Lyon\n", "phone"),
    ],
)
def test_a_refused_file_leaves_nothing_behind(session, make_user, name, content, message):
    user = make_user("advanced")
    draft = drafts.create_draft(session=session, actor=user, name="Kept as it was")
    session.commit()
    with pytest.raises(csv_audience.CsvAudienceRefused, match=message):
        csv_audience.attach_csv(
            session=session,
            actor=user,
            source=io.BytesIO(content),
            original_name=name,
            campaign_id=draft.id,
            name="Kept as it was",
        )
    assert _stored_files() == []
    assert session.exec(select(AudienceUpload)).all() == []
    assert session.get(Campaign, draft.id).audience_kind in ("", None)


def test_a_basic_user_cannot_attach_a_file(session, make_user):
    user = make_user("basic")
    with pytest.raises(perm.PermissionDenied):
        csv_audience.attach_csv(
            session=session, actor=user, source=io.BytesIO(GOOD), original_name="a.csv", campaign_id=None, name="Nope"
        )
    session.rollback()
    assert _stored_files() == []
    assert session.exec(select(Campaign).where(Campaign.name == "Nope")).all() == []
