"""Rows the tests build: Sandbox channels, templates, contact lists (bulk inserts), campaigns, and readers
of a campaign's rows in a session of their own."""

from __future__ import annotations

from sqlalchemy import insert, select
from sqlmodel import Session

from app.db import get_engine
from app.models import (
    Campaign,
    CampaignRecipient,
    Channel,
    Contact,
    ContactIdentity,
    ContactList,
    ListMembership,
    Template,
)
from app.timeutil import utcnow
from tests.support.sandbox import PNID, SECRET, TOKEN, WABA, Sandbox

ORDER_UPDATE = [
    {
        "type": "BODY",
        "text": "Hi {{1}}, your order {{2}} has shipped and should arrive by {{3}}. "
        "Track it any time from your account.",
        "example": {"body_text": [["Maria", "#48213", "Friday, May 16"]]},
    },
    {"type": "FOOTER", "text": "Hubcast Store"},
]
MAPPING = {
    "body.1": {"source": "field", "key": "first_name"},
    "body.2": {"source": "text", "value": "#48213"},
    "body.3": {"source": "text", "value": "Friday"},
}


def make_channel(
    session: Session, url: str, *, mps: int = 1000, token: str = TOKEN, status: str = "connected"
) -> Channel:
    channel = Channel(
        name=f"Sandbox {url}",
        kind="sandbox",
        status=status,
        phone_number_id=PNID,
        business_account_id=WABA,
        access_token=token,
        app_secret=SECRET,
        verify_token="v",
        api_base_url=url,
        api_version="v23.0",
        messages_per_second=mps,
    )
    session.add(channel)
    session.commit()
    return channel


def make_template(
    session: Session,
    channel: Channel,
    *,
    name: str = "order_update",
    status: str = "APPROVED",
    components: list | None = None,
) -> Template:
    template = Template(
        channel_id=channel.id,
        name=name,
        language="en_US",
        category="UTILITY",
        status=status,
        components=components or ORDER_UPDATE,
    )
    session.add(template)
    session.commit()
    return template


def number(i: int) -> str:
    """Valid French mobile numbers that never hit the Sandbox's failure suffixes (0000, 0001)."""
    return f"+3361{i:05d}{(i * 7) % 90 + 10:02d}"


def make_list(
    session: Session,
    numbers: list[str],
    *,
    first_name=lambda i: f"Ana{i}",
    name: str = "Audience",
    subscribed=lambda i: True,
) -> ContactList:
    """Contacts with one WhatsApp identity each, all members of a new list (bulk inserts)."""
    engine = get_engine()
    now = utcnow()
    clist = ContactList(name=name)
    session.add(clist)
    session.commit()
    with engine.begin() as conn:
        first = conn.execute(select(Contact.id).order_by(Contact.id.desc()).limit(1)).scalar() or 0
        conn.execute(
            insert(Contact.__table__),
            [
                {
                    "id": first + 1 + i,
                    "first_name": first_name(i),
                    "last_name": "",
                    "email": "",
                    "country": "FR",
                    "city": "",
                    "language": "",
                    "custom_fields": {},
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(len(numbers))
            ],
        )
        conn.execute(
            insert(ContactIdentity.__table__),
            [
                {
                    "contact_id": first + 1 + i,
                    "channel_type": "whatsapp",
                    "address": n,
                    "subscribed": subscribed(i),
                    "subscription_changed_at": now,
                    "created_at": now,
                }
                for i, n in enumerate(numbers)
            ],
        )
        conn.execute(
            insert(ListMembership.__table__),
            [
                {"list_id": clist.id, "contact_id": first + 1 + i, "source": "manual", "added_at": now}
                for i in range(len(numbers))
            ],
        )
    return clist


def make_campaign(
    session: Session,
    channel: Channel,
    template: Template,
    clist: ContactList,
    *,
    mapping: dict | None = None,
    name: str = "Spring",
) -> Campaign:
    campaign = Campaign(
        name=name,
        audience_kind="list",
        audience_list_id=clist.id,
        channel_id=channel.id,
        template_id=template.id,
        variable_mapping=mapping if mapping is not None else MAPPING,
    )
    session.add(campaign)
    session.commit()
    return campaign


def make_sandbox_campaign(session: Session, sandbox: Sandbox, size: int, *, mps: int = 1000) -> Campaign:
    """A draft campaign of `order_update` to `size` numbers (`number(0..size-1)`), on a channel to `sandbox`."""
    channel = make_channel(session, sandbox.url, mps=mps)
    template = make_template(session, channel)
    return make_campaign(session, channel, template, make_list(session, [number(i) for i in range(size)]))


def campaign_row(campaign_id: int) -> Campaign:
    with Session(get_engine()) as s:
        return s.get(Campaign, campaign_id)


def recipients(campaign_id: int) -> list[CampaignRecipient]:
    with Session(get_engine()) as s:
        return list(
            s.exec(
                select(CampaignRecipient)
                .where(CampaignRecipient.campaign_id == campaign_id)
                .order_by(CampaignRecipient.id)
            ).scalars()
        )


def audience_fingerprint(session: Session) -> tuple:
    """Every contact, identity, list name and membership, sorted: equal before and after = nothing written."""
    from sqlmodel import select as select_models  # model instances, not rows

    session.expire_all()
    return (
        sorted(
            (c.id, c.first_name, c.last_name, c.email, c.city, c.country, repr(c.custom_fields))
            for c in session.exec(select_models(Contact)).all()
        ),
        sorted(
            (i.contact_id, i.channel_type, i.address, i.subscribed)
            for i in session.exec(select_models(ContactIdentity)).all()
        ),
        sorted(cl.name for cl in session.exec(select_models(ContactList)).all()),
        sorted((m.list_id, m.contact_id, m.source) for m in session.exec(select_models(ListMembership)).all()),
    )
