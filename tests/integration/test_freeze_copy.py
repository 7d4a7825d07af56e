"""Freezing an audience with COPY (PostgreSQL, app/services/sending/recipient_copy.py) stores exactly what the
portable executemany INSERT stores: same addresses, contacts, variables, statuses, error titles and order,
for lists (fast and generic readings) and CSV files with duplicates, missing values, unicode, quotes,
tabs, backslashes and new lines; rows already there (a racing scheduler's) are left alone.
On SQLite only the INSERT path runs (the COPY cases skip), still checked against a row-by-row reference."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from app.domain.variables import resolve
from app.models import Campaign, CampaignRecipient, Contact, ContactIdentity, Template
from app.services.audiences import uploads
from app.services.audiences.csv_reader import check_csv
from app.services.audiences.recipients import iter_recipients
from app.services.campaigns import drafts as svc
from app.services.sending import freeze as cs
from app.services.sending.readiness import template_keys
from app.timeutil import utcnow
from tests.support.factories import MAPPING, make_channel, make_list, make_template, number

# new lines/tabs are flattened by the freeze (Meta refuses them); backslashes, quotes, \N, \. and unicode are not
FIRST = [
    "Ana",
    "",
    "Zoë “Q” O'Neil",
    "tab\there",
    "back\\slash \\N \\.",
    "new\nline",
    "\\",
    "🎉 ünï",
    'comma, "dq"',
    "  ",
    "α\r\nβ",
    "x\\ty",
]
CUSTOM = [
    {"plan": "gold\\"},
    {},
    {"plan": "\t"},
    {"plan": "a\tb\\n"},
    {"plan": "'; DROP TABLE x; --"},
    {"plan": "\u2028"},
    {"plan": "ünï"},
    {},
    {"plan": '{"j": 1}'},
    {"plan": "\\\\"},
    {"plan": "ok"},
    {"plan": "last"},
]
LIST_MAPPINGS = {
    "fast": {**MAPPING, "body.1": {"source": "field", "key": "first_name"}},
    "generic": {
        **MAPPING,
        "body.1": {"source": "field", "key": "custom.plan"},
        "body.2": {"source": "field", "key": "first_name"},
    },
}
CSV = (
    "phone,First_Name,City\n"
    '+33612345678,"Ana ""the"" tab\there",Lyon\\\n'
    "+33612345679,,Nice\n"
    "+33612345678,Duplicate,Paris\n"  # a duplicate number: the first row wins
    '+33612345680,"multi\nline","back\\slash"\n'
    "+33612345681,Zoë 🎉,\\N\n"
    "not a number,x,y\n"
    "+33612345682,said stop,z\n"
)
CSV_MAPPING = {
    **MAPPING,
    "body.1": {"source": "column", "key": "First_Name"},
    "body.2": {"source": "column", "key": "City"},
}
PATHS = [pytest.param(False, id="insert"), pytest.param(True, id="copy")]


def _need_pg(session, use_copy: bool) -> None:
    if use_copy and session.get_bind().dialect.name != "postgresql":
        pytest.skip("COPY is PostgreSQL's; SQLite always takes the INSERT path")


def _reference(session, campaign) -> list[tuple]:
    keys = template_keys(session.get(Template, campaign.template_id))
    out = []
    for address, contact_id, contact, row in iter_recipients(session, campaign):
        res = resolve(keys, campaign.variable_mapping, contact=contact, row=row)
        out.append((address, contact_id, res.values, "queued" if res.ok else "skipped", res.error_title))
    assert len({r[0] for r in out}) == len(out)  # the reader yields each number once
    return out


def _stored(session, campaign_id: int) -> list[tuple]:
    R = CampaignRecipient
    rows = session.execute(
        select(R.address, R.contact_id, R.variables, R.status, R.error_title, R.error_code, R.attempts, R.updated_at)
        .where(R.campaign_id == campaign_id)
        .order_by(R.id)
    ).all()
    return [tuple(r) for r in rows]


def _campaign(session, **fields) -> Campaign:
    campaign = Campaign(name="F", **fields)
    session.add(campaign)
    session.commit()
    return campaign


def _freeze_both_ways(session, fields: dict) -> tuple[list, list, list]:
    """Freeze the same audience into two campaigns, INSERT then COPY; returns (reference, insert, copy)."""
    stored, now = [], utcnow()
    for use_copy in (False, True):
        campaign = _campaign(session, **fields)
        expected = _reference(session, campaign)
        assert cs.freeze_audience(session, campaign, now, use_copy=use_copy) == len(expected)
        session.commit()
        stored.append(_stored(session, campaign.id))
    return expected, stored[0], stored[1]


@pytest.fixture()
def env(session, make_user):
    channel = make_channel(session, "http://127.0.0.1:9")
    return {"channel": channel, "template": make_template(session, channel), "user": make_user("advanced")}


@pytest.mark.parametrize("name", list(LIST_MAPPINGS))
@pytest.mark.parametrize("use_copy", PATHS)
def test_list_freeze_stores_the_reference_rows(session, env, name, use_copy):
    _need_pg(session, use_copy)
    clist = make_list(
        session, [number(i) for i in range(len(FIRST))], first_name=lambda i: FIRST[i], subscribed=lambda i: i != 6
    )
    with session.get_bind().begin() as conn:
        for i, custom in enumerate(CUSTOM):
            conn.execute(
                update(Contact)
                .where(Contact.id == ContactIdentity.contact_id, ContactIdentity.address == number(i))
                .values(custom_fields=custom)
            )
    campaign = _campaign(
        session,
        audience_kind="list",
        audience_list_id=clist.id,
        channel_id=env["channel"].id,
        template_id=env["template"].id,
        variable_mapping=LIST_MAPPINGS[name],
    )
    assert (cs._simple_plan(["body.1", "body.2", "body.3"], campaign.variable_mapping) is not None) == (name == "fast")
    expected = _reference(session, campaign)
    now = utcnow()
    assert cs.freeze_audience(session, campaign, now, use_copy=use_copy) == len(FIRST) - 1
    session.commit()
    stored = _stored(session, campaign.id)
    assert [r[:5] for r in stored] == expected
    assert {r[5:] for r in stored} == {(None, 0, now)}
    statuses = [r[3] for r in stored]
    assert "skipped" in statuses and "queued" in statuses  # both kinds of rows went through
    assert any("\\" in v for r in stored for v in r[2].values())  # backslashes survived


@pytest.mark.parametrize("name", list(LIST_MAPPINGS))
def test_copy_and_insert_store_identical_list_rows(session, env, name):
    _need_pg(session, True)
    clist = make_list(session, [number(i) for i in range(len(FIRST))], first_name=lambda i: FIRST[i])
    with session.get_bind().begin() as conn:
        for i, custom in enumerate(CUSTOM):
            conn.execute(
                update(Contact)
                .where(Contact.id == ContactIdentity.contact_id, ContactIdentity.address == number(i))
                .values(custom_fields=custom)
            )
    expected, by_insert, by_copy = _freeze_both_ways(
        session,
        dict(
            audience_kind="list",
            audience_list_id=clist.id,
            channel_id=env["channel"].id,
            template_id=env["template"].id,
            variable_mapping=LIST_MAPPINGS[name],
        ),
    )
    assert by_copy == by_insert
    assert [r[:5] for r in by_copy] == expected


def _csv_upload(session, env, tmp_path):
    (tmp_path / "a.csv").write_text(CSV, encoding="utf-8")
    with open(tmp_path / "a.csv", "rb") as fh:
        stored = uploads.store_upload(fh, original_name="a.csv", purpose=svc.UPLOAD_PURPOSE)
    make_list(session, ["+33612345682"], subscribed=lambda i: False)  # said STOP: not a recipient of the file
    return svc.register_upload(
        session=session, actor=env["user"], path=str(stored.path), original_name="a.csv", check=check_csv(stored.path)
    )


@pytest.mark.parametrize("use_copy", PATHS)
def test_csv_freeze_stores_the_reference_rows(session, env, tmp_path, use_copy):
    _need_pg(session, use_copy)
    upload = _csv_upload(session, env, tmp_path)
    campaign = _campaign(
        session,
        audience_kind="csv",
        audience_upload_id=upload.id,
        channel_id=env["channel"].id,
        template_id=env["template"].id,
        variable_mapping=CSV_MAPPING,
    )
    expected = _reference(session, campaign)
    assert [r[0] for r in expected] == ["+33612345678", "+33612345679", "+33612345680", "+33612345681"]
    assert cs.freeze_audience(session, campaign, utcnow(), use_copy=use_copy) == 4
    session.commit()
    stored = _stored(session, campaign.id)
    assert [r[:5] for r in stored] == expected
    assert stored[0][2]["body.1"] == 'Ana "the" tab here' and stored[0][2]["body.2"] == "Lyon\\"
    assert stored[1][3] == "skipped" and stored[1][4]  # no first name: skipped, with its error title
    assert stored[3][2] == {**stored[3][2], "body.1": "Zoë 🎉", "body.2": "\\N"}  # not read as COPY's NULL


def test_copy_and_insert_store_identical_csv_rows(session, env, tmp_path):
    _need_pg(session, True)
    upload = _csv_upload(session, env, tmp_path)
    expected, by_insert, by_copy = _freeze_both_ways(
        session,
        dict(
            audience_kind="csv",
            audience_upload_id=upload.id,
            channel_id=env["channel"].id,
            template_id=env["template"].id,
            variable_mapping=CSV_MAPPING,
        ),
    )
    assert by_copy == by_insert
    assert [r[:5] for r in by_copy] == expected


@pytest.mark.parametrize("use_copy", PATHS)
def test_rows_already_there_are_kept_and_the_rest_added(session, env, use_copy):
    """A row a racing freeze already wrote wins (ON CONFLICT DO NOTHING); the others are inserted."""
    _need_pg(session, use_copy)
    clist = make_list(session, [number(i) for i in range(4)])
    campaign = _campaign(
        session,
        audience_kind="list",
        audience_list_id=clist.id,
        channel_id=env["channel"].id,
        template_id=env["template"].id,
        variable_mapping=MAPPING,
    )
    session.add(
        CampaignRecipient(
            campaign_id=campaign.id, address=number(2), variables={"body.1": "earlier"}, status="sent", attempts=1
        )
    )
    session.commit()
    assert cs.freeze_audience(session, campaign, utcnow(), use_copy=use_copy) == 4
    session.commit()
    stored = {r[0]: r for r in _stored(session, campaign.id)}
    assert sorted(stored) == [number(i) for i in range(4)]
    assert stored[number(2)][2:4] == ({"body.1": "earlier"}, "sent")
    assert stored[number(0)][2]["body.1"] == "Ana0" and stored[number(0)][3] == "queued"


def test_a_failed_freeze_leaves_nothing_behind(session, env):
    """All-or-nothing: rolled back, neither recipient rows nor the temporary table remain."""
    _need_pg(session, True)
    clist = make_list(session, [number(i) for i in range(3)])
    campaign = _campaign(
        session,
        audience_kind="list",
        audience_list_id=clist.id,
        channel_id=env["channel"].id,
        template_id=env["template"].id,
        variable_mapping=MAPPING,
    )
    cs.freeze_audience(session, campaign, utcnow(), use_copy=True)
    assert len(_stored(session, campaign.id)) == 3  # visible inside the transaction
    session.rollback()
    assert _stored(session, campaign.id) == []
    assert cs.freeze_audience(session, campaign, utcnow(), use_copy=True) == 3  # the table name is free again
    session.commit()
    assert len(_stored(session, campaign.id)) == 3


def test_postgresql_freezes_with_copy_by_default_and_sqlite_with_insert(session, env, monkeypatch):
    from app.services.sending import recipient_copy

    used = []
    real_finish = recipient_copy.RecipientCopier.finish
    monkeypatch.setattr(recipient_copy.RecipientCopier, "finish", lambda self: (used.append(1), real_finish(self)))
    clist = make_list(session, [number(i) for i in range(3)])
    campaign = _campaign(
        session,
        audience_kind="list",
        audience_list_id=clist.id,
        channel_id=env["channel"].id,
        template_id=env["template"].id,
        variable_mapping=MAPPING,
    )
    assert cs.freeze_audience(session, campaign, utcnow()) == 3
    session.commit()
    assert len(_stored(session, campaign.id)) == 3
    assert used == ([1] if session.get_bind().dialect.name == "postgresql" else [])
