"""The Design step's preview and "skipped" count (issue 5): bounded work per mapping change, and the same
numbers as resolving every recipient the way the freeze does (the reference below is that row-by-row
reading: the recipients reader the freeze uses + variables.resolve)."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from app.domain.variables import resolve
from app.models import Campaign, Contact, ContactIdentity, Template
from app.services.audiences import uploads
from app.services.audiences.csv_reader import check_csv
from app.services.audiences.recipients import iter_recipients
from app.services.campaigns import design_preview as dp
from app.services.campaigns import drafts as svc
from app.services.sending.readiness import template_keys
from tests.support.factories import MAPPING, make_channel, make_list, make_template, number

FIRST = ["Ana", "", "  ", "\t", "Bo\n", " \r\n ", "Cy", "", "Di", "Ed"]
CITY = ["Lyon", "Nice", "", "Paris", "", "Rome", " ", "Oslo", "", "Kyiv"]
CUSTOM = [
    {"Plan": "gold"},
    {},
    {"plan": ""},
    {"plan": "x"},
    {"PLAN": " "},
    {"other": 1},
    {"plan": "y"},
    {},
    {},
    {"plan": "z"},
]


def _reference(session, campaign) -> tuple[int, int, list]:
    keys = template_keys(session.get(Template, campaign.template_id))
    seen, skipped, samples = set(), 0, []
    for address, _cid, contact, row in iter_recipients(session, campaign):
        assert address not in seen  # the reader yields each number once
        seen.add(address)
        res = resolve(keys, campaign.variable_mapping, contact=contact, row=row)
        skipped += not res.ok
        if len(samples) < 5:
            samples.append({"address": address, "values": res.values, "missing": list(res.missing)})
    return len(seen), skipped, samples


@pytest.fixture()
def env(session, make_user, redis_client):
    channel = make_channel(session, "http://127.0.0.1:9")
    template = make_template(session, channel)
    return {"channel": channel, "template": template, "user": make_user("advanced")}


LIST_MAPPINGS = {
    "first_name": {**MAPPING, "body.1": {"source": "field", "key": "first_name", "fallback": ""}},
    "first_name_or_city": {
        **MAPPING,
        "body.1": {"source": "field", "key": "first_name"},
        "body.2": {"source": "field", "key": "city"},
    },
    "with_fallback": {**MAPPING, "body.1": {"source": "field", "key": "first_name", "fallback": "friend"}},
    "blank_fallback": {**MAPPING, "body.1": {"source": "field", "key": "first_name", "fallback": " \t "}},
    "custom_field": {**MAPPING, "body.1": {"source": "field", "key": "custom.plan"}},
    "custom_bare": {**MAPPING, "body.1": {"source": "field", "key": "plan"}},
    "phone": {**MAPPING, "body.1": {"source": "field", "key": "phone"}},
    "empty_text": {**MAPPING, "body.2": {"source": "text", "value": "  "}},
    "column_on_a_list": {**MAPPING, "body.1": {"source": "column", "key": "city"}},
    "unmapped": {k: v for k, v in MAPPING.items() if k != "body.3"},
}


@pytest.mark.parametrize("name", list(LIST_MAPPINGS))
def test_list_audience_counts_match_resolving_every_recipient(session, env, name):
    clist = make_list(
        session, [number(i) for i in range(10)], first_name=lambda i: FIRST[i], subscribed=lambda i: i != 8
    )
    with session.get_bind().begin() as conn:
        for i in range(10):
            conn.execute(
                update(Contact)
                .where(Contact.id == ContactIdentity.contact_id, ContactIdentity.address == number(i))
                .values(city=CITY[i], custom_fields=CUSTOM[i])
            )
    campaign = Campaign(
        name="P",
        audience_kind="list",
        audience_list_id=clist.id,
        channel_id=env["channel"].id,
        template_id=env["template"].id,
        variable_mapping=LIST_MAPPINGS[name],
    )
    session.add(campaign)
    session.commit()
    preview = dp.design_preview(session=session, actor=env["user"], campaign_id=campaign.id)
    examined, skipped, samples = _reference(session, campaign)
    assert examined == 9  # the unsubscribed one is not a recipient
    assert (preview.examined, preview.skipped, preview.capped) == (examined, skipped, False)
    assert preview.samples == samples
    if name == "first_name":
        assert skipped == 5  # "", "  ", "\t", " \r\n ", "" (the 8th contact, #7)
    if name in ("empty_text", "column_on_a_list"):
        assert skipped == 9


CSV = (
    "phone;First_Name;City\n+33612345678;Ana;Lyon\n+33612345679;;Nice\n+33612345680; ;\n"
    "+33612345678;dup;dup\nbad;x;y\n+33612345681;Bo;\n+33612345682;Cy;Oslo\n+33612345683;\t;Rome\n"
)
CSV_MAPPINGS = {
    "column": {**MAPPING, "body.1": {"source": "column", "key": "First_Name"}},
    "column_other_case": {**MAPPING, "body.1": {"source": "column", "key": "first_name"}},
    "field_means_column": {**MAPPING, "body.1": {"source": "field", "key": "city"}},
    "both": {
        **MAPPING,
        "body.1": {"source": "column", "key": "First_Name"},
        "body.2": {"source": "column", "key": "City"},
    },
    "fallback": {**MAPPING, "body.1": {"source": "column", "key": "City", "fallback": "there"}},
    "no_such_column": {**MAPPING, "body.1": {"source": "column", "key": "zip"}},
    "phone_column": {**MAPPING, "body.1": {"source": "column", "key": "phone"}},
}


@pytest.mark.parametrize("name", list(CSV_MAPPINGS))
def test_csv_audience_counts_match_resolving_every_row(session, env, tmp_path, name):
    (tmp_path / "a.csv").write_text(CSV)
    with open(tmp_path / "a.csv", "rb") as fh:
        stored = uploads.store_upload(fh, original_name="a.csv", purpose=svc.UPLOAD_PURPOSE)
    upload = svc.register_upload(
        session=session, actor=env["user"], path=str(stored.path), original_name="a.csv", check=check_csv(stored.path)
    )
    make_list(session, ["+33612345682"], subscribed=lambda i: False)  # said STOP: not a recipient of the file
    campaign = Campaign(
        name="F",
        audience_kind="csv",
        audience_upload_id=upload.id,
        channel_id=env["channel"].id,
        template_id=env["template"].id,
        variable_mapping=CSV_MAPPINGS[name],
    )
    session.add(campaign)
    session.commit()
    preview = dp.design_preview(session=session, actor=env["user"], campaign_id=campaign.id)
    examined, skipped, samples = _reference(session, campaign)
    assert examined == 5
    assert (preview.examined, preview.skipped) == (examined, skipped)
    assert preview.samples == samples
    if name == "column":
        assert skipped == 3  # "", " ", "\t"


def test_csv_file_is_read_once_per_upload_then_each_change_only_sums(session, env, tmp_path, monkeypatch):
    (tmp_path / "a.csv").write_text(CSV)
    with open(tmp_path / "a.csv", "rb") as fh:
        stored = uploads.store_upload(fh, original_name="a.csv", purpose=svc.UPLOAD_PURPOSE)
    upload = svc.register_upload(
        session=session, actor=env["user"], path=str(stored.path), original_name="a.csv", check=check_csv(stored.path)
    )
    campaign = Campaign(
        name="F",
        audience_kind="csv",
        audience_upload_id=upload.id,
        channel_id=env["channel"].id,
        template_id=env["template"].id,
        variable_mapping=CSV_MAPPINGS["column"],
    )
    session.add(campaign)
    session.commit()
    calls = {"rows": 0, "samples": 0}
    real_rows, real_recipients = dp.csv_rows, dp.iter_recipients

    def rows(*args, **kw):  # the whole file, for the counts
        calls["rows"] += 1
        return real_rows(*args, **kw)

    def recipients(*args, limit=None, **kw):  # the first lines, for the samples
        assert limit is not None
        calls["samples"] += 1
        return real_recipients(*args, limit=limit, **kw)

    monkeypatch.setattr(dp, "csv_rows", rows)  # spies: the real readers still run
    monkeypatch.setattr(dp, "iter_recipients", recipients)
    skipped = []
    for mapping in CSV_MAPPINGS.values():
        campaign.variable_mapping = mapping
        session.add(campaign)
        session.commit()
        skipped.append(dp.design_preview(session=session, actor=env["user"], campaign_id=campaign.id).skipped)
        assert skipped[-1] == _reference(session, campaign)[1]
    # one full read of the file for the counts; every other read was the few lines of the samples
    assert calls["samples"] == len(CSV_MAPPINGS) and calls["rows"] == 1
    assert len(set(skipped)) > 2  # the mappings really differ in what they skip
