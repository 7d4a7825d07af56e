"""Contact lists (SPEC S6): static sets of contacts made by hand, by import or by an integration.

Viewing needs audiences:view; creating, renaming, deleting and changing members need
audiences:manage. Every change is written to the audit log. Functions flush, the caller commits.
Member changes run in chunks of Core statements so an import can add hundreds of thousands of contacts.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, func, insert, or_, select
from sqlmodel import Session

from app.domain import permissions as perm
from app.models import Campaign, Contact, ContactIdentity, ContactList, ListMembership, User
from app.services.access import get_or_raise, require
from app.services.accounts import audit
from app.services.paging import Page, fmt_time, paging
from app.timeutil import utcnow

SOURCES = ("manual", "import", "integration")
SOURCE_LABELS = {"manual": "Manual", "import": "Import", "integration": "Integration"}
MAX_NAME = 120
MAX_DESCRIPTION = 500
_CHUNK = 5000


class ListError(ValueError):
    """Bad input for a list operation; the message is shown as is."""


def _clean_name(session: Session, name, exclude_id: int | None = None) -> str:
    text = " ".join(str(name or "").split())
    if not text:
        raise ListError("Give the list a name.")
    if len(text) > MAX_NAME:
        raise ListError(f"A list name has at most {MAX_NAME} characters.")
    query = select(ContactList.id).where(func.lower(ContactList.name) == text.lower())
    if exclude_id is not None:
        query = query.where(ContactList.id != exclude_id)
    if session.execute(query).first() is not None:
        raise ListError(f'A list named "{text}" already exists; choose another name.')
    return text


def _clean_description(description) -> str:
    text = str(description or "").strip()
    if len(text) > MAX_DESCRIPTION:
        raise ListError(f"A description has at most {MAX_DESCRIPTION} characters.")
    return text


def _get(session: Session, list_id) -> ContactList:
    return get_or_raise(session, ContactList, list_id, ListError, "That list no longer exists.")


def _ids(contact_ids: Iterable) -> list[int]:
    if isinstance(contact_ids, (str, bytes, dict)) or contact_ids is None:
        raise ListError("Choose the contacts to add or remove.")
    try:
        return sorted({int(i) for i in contact_ids})
    except (TypeError, ValueError):
        raise ListError("Contact ids must be numbers.") from None


def _chunks(items: list[int]) -> Iterable[list[int]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def create_list(*, session: Session, actor: User, name: str, description: str = "") -> ContactList:
    actor = require(session, actor, perm.AUDIENCES_MANAGE)
    name = _clean_name(session, name)
    contact_list = ContactList(name=name, description=_clean_description(description), created_by_id=actor.id)
    session.add(contact_list)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="list.create",
        target_type="list",
        target_id=contact_list.id,
        detail={"name": name},
    )
    return contact_list


def rename_list(
    *, session: Session, actor: User, list_id: int, name: str, description: str | None = None
) -> ContactList:
    actor = require(session, actor, perm.AUDIENCES_MANAGE)
    contact_list = _get(session, list_id)
    new_name = _clean_name(session, name, exclude_id=contact_list.id)
    new_description = contact_list.description if description is None else _clean_description(description)
    old = contact_list.name
    contact_list.name, contact_list.description, contact_list.updated_at = new_name, new_description, utcnow()
    session.add(contact_list)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="list.rename",
        target_type="list",
        target_id=contact_list.id,
        detail={"from": old, "to": new_name},
    )
    return contact_list


def delete_list(*, session: Session, actor: User, list_id: int) -> None:
    """Deletes the list and its memberships; the contacts themselves stay in the base."""
    actor = require(session, actor, perm.AUDIENCES_MANAGE)
    contact_list = _get(session, list_id)
    used = session.execute(select(Campaign.name).where(Campaign.audience_list_id == contact_list.id)).scalars().all()
    if used:
        raise ListError(
            f'This list is the audience of {len(used)} campaign(s) (e.g. "{used[0]}"); it cannot be deleted.'
        )
    members = _member_count(session, contact_list.id)
    session.execute(delete(ListMembership).where(ListMembership.list_id == contact_list.id))
    audit.record(
        session=session,
        actor=actor,
        action="list.delete",
        target_type="list",
        target_id=contact_list.id,
        detail={"name": contact_list.name, "members": members},
    )
    session.delete(contact_list)
    session.flush()


def add_members(
    *, session: Session, actor: User, list_id: int, contact_ids: Iterable[int], source: str = "manual"
) -> int:
    """Add contacts (already members are left as they are); returns how many were added."""
    actor = require(session, actor, perm.AUDIENCES_MANAGE)
    contact_list = _get(session, list_id)
    if source not in SOURCES:
        raise ListError(f"Source must be one of {', '.join(SOURCES)}.")
    ids = _ids(contact_ids)
    added, missing, now = 0, 0, utcnow()
    for chunk in _chunks(ids):
        existing = set(session.execute(select(Contact.id).where(Contact.id.in_(chunk))).scalars())
        already = set(
            session.execute(
                select(ListMembership.contact_id).where(
                    ListMembership.list_id == contact_list.id, ListMembership.contact_id.in_(chunk)
                )
            ).scalars()
        )
        missing += len(chunk) - len(existing)
        fresh = [cid for cid in chunk if cid in existing and cid not in already]
        if fresh:
            session.execute(
                insert(ListMembership),
                [{"list_id": contact_list.id, "contact_id": cid, "source": source, "added_at": now} for cid in fresh],
            )
            added += len(fresh)
    if missing and not added and missing == len(ids):
        raise ListError("Those contacts no longer exist.")
    contact_list.updated_at = now
    session.add(contact_list)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="list.add_members",
        target_type="list",
        target_id=contact_list.id,
        detail={"added": added, "source": source, "requested": len(ids)},
    )
    return added


def remove_members(*, session: Session, actor: User, list_id: int, contact_ids: Iterable[int]) -> int:
    """Remove contacts from the list (not from the base); returns how many were removed."""
    actor = require(session, actor, perm.AUDIENCES_MANAGE)
    contact_list = _get(session, list_id)
    ids = _ids(contact_ids)
    removed = 0
    for chunk in _chunks(ids):
        result = session.execute(
            delete(ListMembership).where(
                ListMembership.list_id == contact_list.id, ListMembership.contact_id.in_(chunk)
            )
        )
        removed += result.rowcount or 0
    contact_list.updated_at = utcnow()
    session.add(contact_list)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="list.remove_members",
        target_type="list",
        target_id=contact_list.id,
        detail={"removed": removed, "requested": len(ids)},
    )
    return removed


def _member_count(session: Session, list_id: int) -> int:
    return int(
        session.execute(
            select(func.count()).select_from(ListMembership).where(ListMembership.list_id == list_id)
        ).scalar_one()
    )


def list_lists(*, session: Session, actor: User) -> list[dict]:
    """Every list with its member count and where its members came from (e.g. "Import, Manual")."""
    require(session, actor, perm.AUDIENCES_VIEW)
    counts = dict(session.execute(select(ListMembership.list_id, func.count()).group_by(ListMembership.list_id)).all())
    sources: dict[int, list[str]] = {}
    for list_id, src in session.execute(
        select(ListMembership.list_id, ListMembership.source)
        .distinct()
        .order_by(ListMembership.list_id, ListMembership.source)
    ).all():
        sources.setdefault(list_id, []).append(src)
    return [
        {
            "id": cl.id,
            "name": cl.name,
            "description": cl.description,
            "members": int(counts.get(cl.id, 0)),
            "source": ", ".join(SOURCE_LABELS.get(s, s) for s in sources.get(cl.id, [])) or "Manual",
            "sources": ",".join(sources.get(cl.id, [])),
            "created": fmt_time(cl.created_at),
        }
        for cl in session.execute(select(ContactList).order_by(ContactList.name)).scalars().all()
    ]


def get_list(*, session: Session, actor: User, list_id: int) -> dict:
    require(session, actor, perm.AUDIENCES_VIEW)
    cl = _get(session, list_id)
    return {"id": cl.id, "name": cl.name, "description": cl.description, "members": _member_count(session, cl.id)}


def members_page(
    *, session: Session, actor: User, list_id: int, search: str = "", page: int = 1, page_size: int = 50
) -> Page:
    """A page of a list's members with how each was added; search by name or number."""
    require(session, actor, perm.AUDIENCES_VIEW)
    contact_list = _get(session, list_id)
    page, page_size = paging(page, page_size)
    query = (
        select(Contact, ListMembership.source, ListMembership.added_at)
        .join(ListMembership, ListMembership.contact_id == Contact.id)
        .where(ListMembership.list_id == contact_list.id)
    )
    count = (
        select(func.count())
        .select_from(ListMembership)
        .join(Contact, ListMembership.contact_id == Contact.id)
        .where(ListMembership.list_id == contact_list.id)
    )
    term = str(search or "").strip()
    if term:
        like = f"%{term}%"
        by_number = select(ContactIdentity.contact_id).where(ContactIdentity.address.like(like))
        cond = or_(Contact.first_name.ilike(like), Contact.last_name.ilike(like), Contact.id.in_(by_number))
        query, count = query.where(cond), count.where(cond)
    total = int(session.execute(count).scalar_one())
    rows = session.execute(
        query.order_by(Contact.last_name, Contact.first_name, Contact.id)
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    ids = [c.id for c, _, _ in rows]
    whatsapp: dict[int, ContactIdentity] = {}
    if ids:
        for ident in session.execute(
            select(ContactIdentity).where(
                ContactIdentity.contact_id.in_(ids), ContactIdentity.channel_type == "whatsapp"
            )
        ).scalars():
            whatsapp.setdefault(ident.contact_id, ident)
    return Page(
        [
            {
                "id": c.id,
                "name": f"{c.first_name} {c.last_name}".strip(),
                "country": c.country,
                "whatsapp": whatsapp[c.id].address if c.id in whatsapp else "",
                "subscribed": bool(c.id in whatsapp and whatsapp[c.id].subscribed),
                "source": SOURCE_LABELS.get(src, src),
                "added": fmt_time(added),
            }
            for c, src, added in rows
        ],
        total,
        page,
        page_size,
    )
