"""The Contacts page's read model: a server-paged search over the contact base with its filters.

Counts are capped so a filtered search over a million contacts never counts them all per keystroke.
"""

from __future__ import annotations

import re

from sqlalchemy import and_, func, literal, or_, tuple_
from sqlmodel import Session, select

from app.domain import permissions as perm
from app.models import Contact, ContactIdentity, User
from app.services.access import require
from app.services.audiences.channel_flags import (
    flags_where,
    has_identity_on,
    subscribed_anywhere,
    subscribed_on,
    unsubscribed_on,
)
from app.services.audiences.summary import CHANNEL_TYPES
from app.services.paging import Page, paging

# Beyond this many matches a filtered contact search shows "10,000+" rather than counting a million rows
# on every keystroke; `Page.total` is then CONTACTS_COUNT_CAP + 1.
CONTACTS_COUNT_CAP = 10_000
# Past the cap, the page is first looked for among this many contacts in name order (a bounded index walk).
NAME_WALK_ROWS = 10_000
# ...then among the first matching distinct last names, reading at most this many distinct last names.
LAST_NAME_WALK = 10_000
CHANNEL_LABELS = {"whatsapp": "WhatsApp", "instagram": "Instagram", "messenger": "Messenger", "sms": "SMS"}


def _channel_condition(channel: str, subscription: str):
    """The channel / subscription filters, read from contacts.channel_flags (kept by the database from the
    identities, migration 0005): `channel_flags IN (...)`, no lookup in contact_identities. Same contacts as
    "has an identity on the channel [that is / is not subscribed]"; with no channel, "unsubscribed" means
    reachable somewhere but subscribed nowhere."""
    if subscription == "subscribed":
        return flags_where(lambda f: subscribed_on(f, channel) if channel else subscribed_anywhere(f))
    if subscription == "unsubscribed":
        return flags_where(lambda f: unsubscribed_on(f, channel) if channel else f != 0 and not subscribed_anywhere(f))
    if channel:
        return flags_where(lambda f: has_identity_on(f, channel))
    return None


_NUMBER_TERM = re.compile(r"^\+?[\d\s.\-()/]{3,}$")
_PHONE_CHANNELS = ("whatsapp", "sms")
_HANDLE_CHANNELS = ("instagram", "messenger")


def _number_prefix_match(term: str):
    """Contacts whose WhatsApp/SMS number starts with the typed digits (country code first).

    Stored numbers are "+" and digits, so the prefix is also a range on uq_identity_type_address: an index
    range scan whatever the database collation, instead of a LIKE over every identity."""
    prefix = "+" + re.sub(r"\D", "", term)
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return Contact.id.in_(
        select(ContactIdentity.contact_id).where(
            ContactIdentity.channel_type.in_(_PHONE_CHANNELS),
            ContactIdentity.address >= prefix,
            ContactIdentity.address < upper,
            ContactIdentity.address.like(prefix + "%"),
        )
    )


_PLAIN_RUN = re.compile(r"[^\s%_\\]+")  # characters that match only themselves in a LIKE pattern


def _text_match(session: Session, term: str):
    """First name, last name, "first last", email (when the term has an @) or an Instagram/Messenger id."""
    last, others = _text_arms(session, term)
    return or_(last, *others)


def _text_arms(session: Session, term: str) -> tuple:
    """The search as (last-name condition, [the other conditions]); a contact matches if any holds.

    First name, last name, "first last", email (when the term has an @) or an Instagram/Messenger id.

    Written so PostgreSQL can answer from indexes (ix_contacts_search_trgm, a pg_trgm GIN index, 0005):
    every arm of the OR is indexable. "first last" is not a column, so it is also required to contain the
    term's longest plain run of characters in the first or the last name, which any match does (the run
    has no space, so it lies in one of the two) and which the index serves. The id typed whole is looked
    up first (an index probe) and joins the OR as a list of ids, not as a sub-select, which would force a
    scan of every contact."""
    like = f"%{term}%"
    conds = [Contact.first_name.ilike(like)]
    if " " in term:  # "anna mü": first and last name together
        full = (Contact.first_name + " " + Contact.last_name).ilike(like)
        run = max(_PLAIN_RUN.findall(term), key=len, default="")
        if len(run) >= 3:  # trigrams need three characters
            full = and_(or_(Contact.first_name.ilike(f"%{run}%"), Contact.last_name.ilike(f"%{run}%")), full)
        conds.append(full)
    if "@" in term:
        conds.append(Contact.email.ilike(like))
    # An Instagram or Messenger id, typed whole: an index lookup, not a scan.
    handles = session.exec(
        select(ContactIdentity.contact_id).where(
            ContactIdentity.channel_type.in_(_HANDLE_CHANNELS), ContactIdentity.address == term
        )
    ).all()
    if handles:
        conds.append(Contact.id.in_(sorted(set(handles))))
    return Contact.last_name.ilike(like), conds


def _contact_conditions(session: Session, search: str, country: str, channel: str, subscription: str) -> list:
    conds = []
    term = (search or "").strip()[:200]
    if term:
        conds.append(
            _number_prefix_match(term)
            if _NUMBER_TERM.match(term) and sum(c.isdigit() for c in term) >= 3
            else _text_match(session, term)
        )
    if country:
        conds.append(Contact.country == country)
    flags = _channel_condition(channel, subscription)
    if flags is not None:
        conds.append(flags)
    return conds


def _contact_row(contact: Contact, idents: list[ContactIdentity]) -> dict:
    by_type: dict[str, ContactIdentity] = {}
    for ident in idents:
        by_type.setdefault(ident.channel_type, ident)
    wa = by_type.get("whatsapp")
    row = {
        "id": contact.id,
        "name": f"{contact.first_name} {contact.last_name}".strip() or "(no name)",
        "email": contact.email,
        "country": contact.country,
        "city": contact.city,
        "whatsapp": wa.address if wa else "",
        "subscribed": bool(wa and wa.subscribed),
        "channels": ", ".join(CHANNEL_LABELS[t] for t in CHANNEL_TYPES if t in by_type),
    }
    for t in CHANNEL_TYPES:  # "subscribed" | "unsubscribed" | "" (no identity there): one badge per channel
        row[f"sub_{t}"] = "" if t not in by_type else ("subscribed" if by_type[t].subscribed else "unsubscribed")
    return row


def _page_in_name_prefix(session: Session, conds: list, order: tuple, page: int, page_size: int) -> list[Contact]:
    """The page when it lies within the first NAME_WALK_ROWS contacts in name order, else [].

    Exact, not a guess: the matches among a prefix of the name order are the first matches overall, so a
    full page found there is the page. The prefix ends at the name NAME_WALK_ROWS rows in (read from
    ix_contacts_last_first alone), so the walk is bounded however rare the matches turn out to be."""
    boundary = session.exec(
        select(Contact.last_name, Contact.first_name)
        .order_by(Contact.last_name, Contact.first_name)
        .offset(NAME_WALK_ROWS - 1)
        .limit(1)
    ).first()
    if boundary is None:
        return []  # a small base: ordering every match is cheap anyway
    within = tuple_(Contact.last_name, Contact.first_name) <= tuple_(*boundary)
    contacts = session.exec(
        select(Contact).where(within, *conds).order_by(*order).offset((page - 1) * page_size).limit(page_size)
    ).all()
    return contacts if len(contacts) == page_size else []


def _matching_last_names(session: Session, term: str, wanted: int) -> tuple[list[str], bool] | None:
    """The first `wanted` distinct last names containing `term` (ILIKE, as the search), in name order, and
    whether there are no more; None when LAST_NAME_WALK distinct names were read without getting there.

    A skip scan of ix_contacts_last_first: one index probe per distinct last name (`min(last_name) WHERE
    last_name > previous`, a recursive CTE), so the cost follows the number of distinct names passed, not
    the number of contacts carrying them."""
    walk_anchor = select(func.min(Contact.last_name).label("name"), literal(1).label("step"))
    walk = walk_anchor.cte("name_walk", recursive=True)
    inner = Contact.__table__.alias("later")
    following = select(func.min(inner.c.last_name)).where(inner.c.last_name > walk.c.name).scalar_subquery()
    walk = walk.union_all(
        select(following, walk.c.step + 1).where(walk.c.name.is_not(None), walk.c.step < LAST_NAME_WALK)
    )
    hit = walk.c.name.ilike(f"%{term}%")
    rows = session.exec(
        select(walk.c.name, walk.c.step, hit)
        .where(or_(hit, walk.c.name.is_(None), walk.c.step == LAST_NAME_WALK))
        .limit(wanted + 1)
    ).all()
    names = [name for name, _step, matched in rows if name is not None and matched][:wanted]
    if len(names) == wanted:
        return names, False
    if any(name is None for name, _step, _matched in rows):
        return names, True  # the end of the name order
    return None  # the walk's budget ran out first


def _page_by_last_names(session: Session, term: str, filters: list, page: int, page_size: int):
    """The page past the cap when it is not in the name-order prefix, without sorting every match; None
    when this way would not be quick (then the caller sorts every match, as before).

    Exact: a contact matches by its last name (`last_name ILIKE`) or by another arm (first name, "first
    last", email, id). The first page * page_size matches in name order are among (a) the first that many
    last-name matches, which lie in the first matching distinct last names (found by a skip scan over
    distinct names, _matching_last_names), and (b) every other-arm match, read whole when there are at
    most CONTACTS_COUNT_CAP of them (a trigram index search). The page is then cut from those candidates in
    the database's name order."""
    _last_arm, other_arms = _text_arms(session, term)
    need = page * page_size
    keys = (Contact.last_name, Contact.first_name, Contact.id)
    candidates: set[int] = set()
    if other_arms:
        others = session.exec(select(Contact.id).where(or_(*other_arms), *filters).limit(CONTACTS_COUNT_CAP + 1)).all()
        if len(others) > CONTACTS_COUNT_CAP:
            return None
        candidates.update(others)
    wanted = 8
    while True:
        found = _matching_last_names(session, term, wanted)
        if found is None:
            return None
        names, exhausted = found
        firsts = (
            session.exec(
                select(Contact.id).where(Contact.last_name.in_(names), *filters).order_by(*keys).limit(need)
            ).all()
            if names
            else []
        )
        if len(firsts) >= need or exhausted:
            break
        wanted *= 4
    candidates.update(firsts)
    if not candidates:
        return []
    return session.exec(
        select(Contact)
        .where(Contact.id.in_(sorted(candidates)))
        .order_by(*keys)
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()


def contacts_page(
    *,
    session: Session,
    actor: User,
    search: str = "",
    country: str = "",
    channel: str = "",
    subscription: str = "",
    page: int = 1,
    page_size: int = 50,
) -> Page:
    """One page of contacts, filtered and ordered by name; identities are read for that page only.

    Built to stay quick with 1,000,000 contacts (bench/contacts_search.py): the unfiltered total is one
    count of the contacts table (no join); a filtered total stops at CONTACTS_COUNT_CAP + 1 matches, and is
    not counted at all when the first page is not full; channel and subscription filters read
    contacts.channel_flags (ix_contacts_channel_flags); a typed number is a prefix range on
    uq_identity_type_address. A name or email search is a substring match (ILIKE) that PostgreSQL answers
    from ix_contacts_search_trgm (pg_trgm GIN, migration 0005) when the term has three characters or more;
    on SQLite, and for shorter terms, it scans the contacts table."""
    require(session, actor, perm.AUDIENCES_VIEW)
    page, page_size = paging(page, page_size)
    country = (country or "").strip().upper()[:2]
    channel = channel if channel in CHANNEL_TYPES else ""
    subscription = subscription if subscription in ("subscribed", "unsubscribed") else ""
    conds = _contact_conditions(session, search, country, channel, subscription)
    order = (Contact.last_name, Contact.first_name, Contact.id)
    term = (search or "").strip()
    if term and not _NUMBER_TERM.match(term):
        # The planner cannot tell how few rows a substring matches, and would rather walk ix_contacts_last_first
        # through the whole table (4-5 s per 1M contacts measured on PostgreSQL). So find at most COUNT_CAP + 1
        # matching ids first (the trigram index, or one scan), which gives the total too, then order just
        # those. Past the cap, the matches are common: look for the page among the first NAME_WALK_ROWS
        # contacts in name order (a bounded index walk), and only if it is not all there, order every match
        # by an expression, which forbids the unbounded index walk.
        hits = session.exec(select(Contact.id).where(*conds).limit(CONTACTS_COUNT_CAP + 1)).all()
        total = len(hits)
        contacts = []
        if total > CONTACTS_COUNT_CAP:
            contacts = _page_in_name_prefix(session, conds, order, page, page_size)
            if not contacts:
                contacts = _page_by_last_names(session, term[:200], conds[1:], page, page_size) or []
        if hits and not contacts:
            chosen = Contact.id.in_(hits) if total <= CONTACTS_COUNT_CAP else and_(*conds)
            order = (Contact.last_name if total <= CONTACTS_COUNT_CAP else Contact.last_name.concat(""), *order[1:])
            contacts = session.exec(
                select(Contact).where(chosen).order_by(*order).offset((page - 1) * page_size).limit(page_size)
            ).all()
    else:
        contacts = session.exec(
            select(Contact).where(*conds).order_by(*order).offset((page - 1) * page_size).limit(page_size)
        ).all()
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
        for ident in session.exec(
            select(ContactIdentity).where(ContactIdentity.contact_id.in_(page_ids)).order_by(ContactIdentity.id)
        ).all():
            identities.setdefault(ident.contact_id, []).append(ident)
    return Page([_contact_row(c, identities.get(c.id, [])) for c in contacts], total, page, page_size)
