"""The freeze's fast path (built-in contact fields and fixed texts, only the needed columns read)
stores exactly what the generic reading stores: `recipients.iter_recipients` + `variables.resolve`, row by
row, over awkward values (blank, tabs, new lines, long runs of spaces, non-breaking spaces)."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from app.domain.variables import resolve
from app.models import Campaign, CampaignRecipient, Contact, ContactIdentity, Template
from app.services.audiences.recipients import iter_recipients
from app.services.sending import freeze as cs
from app.services.sending.readiness import template_keys
from app.timeutil import utcnow
from tests.support.factories import MAPPING, make_channel, make_list, make_template, number

FIRST = ["Ana", "", "  ", "\t", "Bo\n", " \r\n ", "Cy  \t x", "Di      Ed", "\u00a0Eve\u00a0", "Fay     ", "G\u2003"]
CITY = ["Lyon", "", " Nice ", "a\r\nb", "", "Rome", "     ", "Oslo", "x\ty", "", "Kyiv"]

MAPPINGS = {
    "first_name": {**MAPPING, "body.1": {"source": "field", "key": "first_name"}},
    "fallbacks": {
        "body.1": {"source": "field", "key": "first_name", "fallback": " friend\t"},
        "body.2": {"source": "field", "key": "city", "fallback": "   "},
        "body.3": {"source": "field", "key": "phone"},
    },
    "texts": {
        "body.1": {"source": "TEXT", "value": " a\n b "},
        "body.2": {"source": "text", "text": "  "},
        "body.3": {"source": "text", "key": "k", "fallback": "f"},
    },
}


def _reference(session, campaign) -> list[tuple]:
    keys = template_keys(session.get(Template, campaign.template_id))
    out = []
    for address, contact_id, contact, row in iter_recipients(session, campaign):
        res = resolve(keys, campaign.variable_mapping, contact=contact, row=row)
        out.append((address, contact_id, res.values, "queued" if res.ok else "skipped", res.error_title))
    return out


@pytest.mark.parametrize("name", list(MAPPINGS))
def test_fast_freeze_stores_what_resolving_every_row_stores(session, make_user, name):
    assert cs._simple_plan(["body.1", "body.2", "body.3"], MAPPINGS[name]) is not None  # the fast path runs
    channel = make_channel(session, "http://127.0.0.1:9")
    template = make_template(session, channel)
    clist = make_list(
        session, [number(i) for i in range(len(FIRST))], first_name=lambda i: FIRST[i], subscribed=lambda i: i != 5
    )
    with session.get_bind().begin() as conn:
        for i, city in enumerate(CITY):
            conn.execute(
                update(Contact)
                .where(Contact.id == ContactIdentity.contact_id, ContactIdentity.address == number(i))
                .values(city=city)
            )
    campaign = Campaign(
        name="F",
        audience_kind="list",
        audience_list_id=clist.id,
        channel_id=channel.id,
        template_id=template.id,
        variable_mapping=MAPPINGS[name],
    )
    session.add(campaign)
    session.commit()
    expected = _reference(session, campaign)
    assert cs.freeze_audience(session, campaign, utcnow()) == len(FIRST) - 1
    session.commit()
    R = CampaignRecipient
    stored = session.execute(
        select(R.address, R.contact_id, R.variables, R.status, R.error_title)
        .where(R.campaign_id == campaign.id)
        .order_by(R.id)
    ).all()
    assert [tuple(r) for r in stored] == expected


def test_custom_fields_and_columns_take_the_generic_path():
    assert cs._simple_plan(["body.1"], {"body.1": {"source": "field", "key": "plan"}}) is None
    assert cs._simple_plan(["body.1"], {"body.1": {"source": "column", "key": "city"}}) is None
    assert cs._simple_plan(["body.1"], {"body.1": "first_name"}) is None
    assert cs._simple_plan(["body.1"], {}) is None
    assert cs._simple_plan(["body.1"], {"body.1": {"source": "field", "fallback": "x"}}) is None
