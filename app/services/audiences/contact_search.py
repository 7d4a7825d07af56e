"""The Contacts page's read model: a server-paged search over the contact base with its filters.

Counts are capped so a filtered search over a million contacts never counts them all per keystroke.
"""

from __future__ import annotations

import re

from sqlalchemy import and_, exists, func, or_
from sqlmodel import Session, select

from app.domain import permissions as perm
from app.models import Contact, ContactIdentity, User
from app.services.access import require
from app.services.audiences.summary import CHANNEL_TYPES
from app.services.paging import Page, paging

# Beyond this many matches a filtered contact search shows "10,000+" rather than counting a million rows
# on every keystroke; `Page.total` is then CONTACTS_COUNT_CAP + 1.
CONTACTS_COUNT_CAP = 10_000
CHANNEL_LABELS = {"whatsapp": "WhatsApp", "instagram": "Instagram", "messenger": "Messenger", "sms": "SMS"}


def _identity_exists(channel: str, subscribed: bool | None):
    # Correlated EXISTS: one lookup per candidate contact on ix_identity_contact_type, never a join to count.
    cond = [ContactIdentity.contact_id == Contact.id]
    if channel:
        cond.append(ContactIdentity.channel_type == channel)
    if subscribed is not None:
        cond.append(ContactIdentity.subscribed == subscribed)
    return exists().where(and_(*cond))


_NUMBER_TERM = re.compile(r"^\+?[\d\s.\-()/]{3,}$")
_PHONE_CHANNELS = ("whatsapp", "sms")
_HANDLE_CHANNELS = ("instagram", "messenger")


def _number_prefix_match(term: str):
    """Contacts whose WhatsApp/SMS number starts with the typed digits (country code first).

    Stored numbers are "+" and digits, so the prefix is also a range on uq_identity_type_address: an index
    range scan whatever the database collation, instead of a LIKE over every identity."""
    prefix = "+" + re.sub(r"\D", "", term)
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return Contact.id.in_(select(ContactIdentity.contact_id).where(
        ContactIdentity.channel_type.in_(_PHONE_CHANNELS), ContactIdentity.address >= prefix,
        ContactIdentity.address < upper, ContactIdentity.address.like(prefix + "%")))


def _text_match(term: str):
    like = f"%{term}%"
    conds = [Contact.first_name.ilike(like), Contact.last_name.ilike(like)]
    if " " in term:  # "anna mü": first and last name together
        conds.append((Contact.first_name + " " + Contact.last_name).ilike(like))
    if "@" in term:
        conds.append(Contact.email.ilike(like))
    # An Instagram or Messenger id, typed whole: an index lookup, not a scan.
    conds.append(Contact.id.in_(select(ContactIdentity.contact_id).where(
        ContactIdentity.channel_type.in_(_HANDLE_CHANNELS), ContactIdentity.address == term)))
    return or_(*conds)


def _contact_conditions(search: str, country: str, channel: str, subscription: str) -> list:
    conds = []
    term = (search or "").strip()[:200]
    if term:
        conds.append(_number_prefix_match(term) if _NUMBER_TERM.match(term) and sum(c.isdigit() for c in term) >= 3
                     else _text_match(term))
    if country:
        conds.append(Contact.country == country)
    if subscription == "subscribed":
        conds.append(_identity_exists(channel, True))
    elif subscription == "unsubscribed":
        # On the chosen channel: unsubscribed there. With no channel: reachable somewhere, subscribed nowhere.
        conds.append(_identity_exists(channel, False) if channel
                     else and_(_identity_exists("", None), ~_identity_exists("", True)))
    elif channel:
        conds.append(_identity_exists(channel, None))
    return conds


def _contact_row(contact: Contact, idents: list[ContactIdentity]) -> dict:
    by_type: dict[str, ContactIdentity] = {}
    for ident in idents:
        by_type.setdefault(ident.channel_type, ident)
    wa = by_type.get("whatsapp")
    row = {
        "id": contact.id, "name": f"{contact.first_name} {contact.last_name}".strip() or "(no name)",
        "email": contact.email, "country": contact.country, "city": contact.city,
        "whatsapp": wa.address if wa else "", "subscribed": bool(wa and wa.subscribed),
        "channels": ", ".join(CHANNEL_LABELS[t] for t in CHANNEL_TYPES if t in by_type),
    }
    for t in CHANNEL_TYPES:  # "subscribed" | "unsubscribed" | "" (no identity there): one badge per channel
        row[f"sub_{t}"] = "" if t not in by_type else ("subscribed" if by_type[t].subscribed else "unsubscribed")
    return row


def contacts_page(*, session: Session, actor: User, search: str = "", country: str = "", channel: str = "",
                  subscription: str = "", page: int = 1, page_size: int = 50) -> Page:
    """One page of contacts, filtered and ordered by name; identities are read for that page only.

    Built to stay quick with 1,000,000 contacts: the unfiltered total is one count of the contacts table
    (no join); a filtered total stops at CONTACTS_COUNT_CAP + 1 matches, and is not counted at all when the
    first page is not full; channel and subscription filters are EXISTS lookups on ix_identity_contact_type;
    a typed number is a prefix range on uq_identity_type_address. A name search is a substring match
    (ILIKE) that no B-tree index serves, so it scans the contacts table once (~0.6 s per 1M contacts on
    PostgreSQL, measured on 2 busy cores); a pg_trgm GIN index on first_name/last_name would make it an index search."""
    require(session, actor, perm.AUDIENCES_VIEW)
    page, page_size = paging(page, page_size)
    country = (country or "").strip().upper()[:2]
    channel = channel if channel in CHANNEL_TYPES else ""
    subscription = subscription if subscription in ("subscribed", "unsubscribed") else ""
    conds = _contact_conditions(search, country, channel, subscription)
    order = (Contact.last_name, Contact.first_name, Contact.id)
    term = (search or "").strip()
    if term and not _NUMBER_TERM.match(term):
        # A name search is a scan (see above), and the planner, unable to tell that it matches few rows,
        # would rather walk ix_contacts_last_first through the whole table (4-5 s per 1M contacts measured on
        # PostgreSQL). So scan once for at most COUNT_CAP + 1 matching ids, which gives the total too, then
        # order just those; past the cap, order by an expression, which forbids the index walk.
        hits = session.exec(select(Contact.id).where(*conds).limit(CONTACTS_COUNT_CAP + 1)).all()
        total = len(hits)
        chosen = Contact.id.in_(hits) if total <= CONTACTS_COUNT_CAP else and_(*conds)
        order = (Contact.last_name if total <= CONTACTS_COUNT_CAP else Contact.last_name.concat(""), *order[1:])
        contacts = session.exec(select(Contact).where(chosen).order_by(*order)
                                .offset((page - 1) * page_size).limit(page_size)).all() if hits else []
    else:
        contacts = session.exec(select(Contact).where(*conds).order_by(*order)
                                .offset((page - 1) * page_size).limit(page_size)).all()
        if page == 1 and len(contacts) < page_size:
            total = len(contacts)  # the first page says it all: no second pass to count
        elif conds:
            matching = select(Contact.id).where(*conds).limit(CONTACTS_COUNT_CAP + 1).subquery()
            total = session.exec(select(func.count()).select_from(matching)).one()
        else:
            total = session.exec(select(func.count()).select_from(Contact)).one()
    identities: dict[int, list[ContactIdentity]] = {}
    if contacts:
        page_ids = [c.id for c in contacts]
        for ident in session.exec(select(ContactIdentity).where(ContactIdentity.contact_id.in_(page_ids))
                                  .order_by(ContactIdentity.id)).all():
            identities.setdefault(ident.contact_id, []).append(ident)
    return Page([_contact_row(c, identities.get(c.id, [])) for c in contacts], total, page, page_size)
