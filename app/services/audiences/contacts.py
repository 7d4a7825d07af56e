"""Contacts (SPEC S5): create and edit, consent per channel, and CSV import into the base.

(The paged, filtered search the Contacts page shows is `app.services.audiences.contact_search.contacts_page`.)

Every function takes `session` and `actor` and checks the actor's capability itself: viewing needs
`audiences:view`, any change `audiences:manage`. Errors a user can fix raise `ContactError` with a
message safe to show as is.

The import (`preview_import` / `commit_import`) reuses the campaign CSV reader (`app.services.audiences.csv_reader`:
the same separator, header, `phone`/`id` column, country-code and 20 MB rules) and upserts by the
WhatsApp number in E.164. The preview writes nothing. The commit is one transaction of bulk statements
(Core `executemany`, chunked): either every row lands or, on any failure, nothing does. An import never
re-subscribes a contact who unsubscribed: consent is changed only by the contact or by hand.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import phonenumbers
from sqlalchemy import bindparam, insert, select as sa_select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, select

from app.domain import permissions as perm
from app.domain.phone import normalise_phone
from app.models import Contact, ContactIdentity, ListMembership, User
from app.services.accounts import audit
from app.services.audiences import lists
from app.services.audiences.summary import CHANNEL_TYPES
from app.services.audiences.contact_search import CHANNEL_LABELS
from app.services.audiences.csv_reader import CsvCheck, CsvRefused, InvalidRow, check_csv, iter_valid_rows
from app.settings import get_settings
from app.timeutil import utcnow

PHONE_CHANNELS = frozenset({"whatsapp", "sms"})  # addresses are phone numbers, stored in E.164

CONTACT_FIELDS: tuple[str, ...] = ("first_name", "last_name", "email", "country", "city", "language")
FIELD_LABELS = {"first_name": "First name", "last_name": "Last name", "email": "Email", "country": "Country",
                "city": "City", "language": "Language"}
FIELD_LIMITS = {"first_name": 120, "last_name": 120, "email": 254, "country": 2, "city": 120, "language": 16}
CUSTOM_VALUE_LIMIT = 500
MAX_CUSTOM_FIELDS = 50
ADDRESS_LIMIT = 255
SUBSCRIPTION_STATES = ("subscribed", "unsubscribed")

# Custom field keys become template variables and segment fields: keep them plain identifiers.
_CUSTOM_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})?$")
_SOCIAL_ID = re.compile(r"^[^\s]{1,255}$")
# Column names that identify the row rather than describe the contact.
_ID_COLUMNS = frozenset({"phone", "id", "whatsapp"})


class ContactError(ValueError):
    """Bad contact input or an impossible change. The message is safe to show."""


def _can_view(actor: User) -> None:
    perm.require(actor.role if actor else None, perm.AUDIENCES_VIEW)


def _can_manage(actor: User) -> None:
    perm.require(actor.role if actor else None, perm.AUDIENCES_MANAGE)


# --- validation (shared by the form and the import) -----------------------------------------------

def custom_key(name: str) -> str:
    """'Loyalty Tier' -> 'loyalty_tier'; '' when the name cannot be a key."""
    key = re.sub(r"[^a-z0-9]+", "_", str(name).strip().lower()).strip("_")
    return key if _CUSTOM_KEY.match(key) else ""


def clean_field(name: str, value) -> str:
    """One built-in field, trimmed and checked; raises ContactError naming the field."""
    text = str(value if value is not None else "").strip()
    label = FIELD_LABELS[name]
    if name == "country":
        text = text.upper()
        if text and text not in phonenumbers.SUPPORTED_REGIONS:
            raise ContactError(f"{label} must be a two-letter ISO code such as FR, GB or AU, not {text[:20]!r}.")
        return text
    if len(text) > FIELD_LIMITS[name]:
        raise ContactError(f"{label} is longer than {FIELD_LIMITS[name]} characters.")
    if name == "email" and text and not _EMAIL.match(text):
        raise ContactError(f"{label} {text[:60]!r} is not an email address.")
    if name == "language" and text and not _LANGUAGE.match(text):
        raise ContactError(f"{label} must be a language code such as en, fr or pt_BR, not {text!r}.")
    return text


def clean_fields(fields: dict) -> dict[str, str]:
    if not isinstance(fields, dict):
        raise ContactError("The contact form is incomplete.")
    return {name: clean_field(name, fields.get(name, "")) for name in CONTACT_FIELDS}


def clean_custom_fields(custom) -> dict[str, str]:
    """{key: value} with plain-identifier keys; empty values are dropped (a blank cell removes nothing)."""
    if custom is None:
        return {}
    if not isinstance(custom, dict):
        raise ContactError("Custom fields must be a list of names and values.")
    out: dict[str, str] = {}
    for raw_key, raw_value in custom.items():
        value = str(raw_value if raw_value is not None else "").strip()
        if not str(raw_key).strip() and not value:
            continue
        key = custom_key(raw_key)
        if not key:
            raise ContactError(f"Custom field name {str(raw_key)[:40]!r} must start with a letter and use only "
                               "letters, digits and underscores.")
        if key in CONTACT_FIELDS or key in _ID_COLUMNS:
            raise ContactError(f"{key!r} is a built-in field; give the custom field another name.")
        if len(value) > CUSTOM_VALUE_LIMIT:
            raise ContactError(f"Custom field {key!r} is longer than {CUSTOM_VALUE_LIMIT} characters.")
        if value:
            out[key] = value
    if len(out) > MAX_CUSTOM_FIELDS:
        raise ContactError(f"A contact can have at most {MAX_CUSTOM_FIELDS} custom fields.")
    return out


def clean_address(channel_type: str, raw) -> str:
    """An identity's address: E.164 for WhatsApp and SMS, a platform id otherwise ('' when blank)."""
    if channel_type not in CHANNEL_TYPES:
        raise ContactError(f"Unknown channel {str(channel_type)[:20]!r}.")
    text = str(raw if raw is not None else "").strip()
    if not text:
        return ""
    label = CHANNEL_LABELS[channel_type]
    if channel_type in PHONE_CHANNELS:
        e164, reason = normalise_phone(text)
        if e164 is None:
            raise ContactError(f"{label} number {text[:40]!r}: {reason}.")
        return e164
    if not _SOCIAL_ID.match(text):
        raise ContactError(f"{label} id must be one word without spaces, at most {ADDRESS_LIMIT} characters.")
    return text


def clean_identities(identities: dict) -> dict[str, str]:
    if not isinstance(identities, dict):
        raise ContactError("The contact's channels are incomplete.")
    unknown = [str(k)[:20] for k in identities if k not in CHANNEL_TYPES]
    if unknown:
        raise ContactError(f"Unknown channel {unknown[0]!r}.")
    return {t: clean_address(t, identities.get(t, "")) for t in CHANNEL_TYPES}


def country_of(e164: str) -> str:
    """The ISO country of a number ('' when several share the code and the number does not say)."""
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return ""
    return region if region and region != phonenumbers.UNKNOWN_REGION else ""


def display_name(contact: Contact) -> str:
    return f"{contact.first_name} {contact.last_name}".strip() or f"Contact #{contact.id}"


def _check_addresses_free(session: Session, contact_id: int | None, addresses: dict[str, str]) -> None:
    for channel_type, address in addresses.items():
        if not address:
            continue
        other = session.exec(
            select(Contact).join(ContactIdentity, ContactIdentity.contact_id == Contact.id)
            .where(ContactIdentity.channel_type == channel_type, ContactIdentity.address == address)
        ).first()
        if other is not None and other.id != contact_id:
            raise ContactError(f"{CHANNEL_LABELS[channel_type]} {address} already belongs to "
                               f"{display_name(other)} (contact #{other.id}).")


# --- create, edit, consent ---------------------------------------------------------------------

def get_contact(*, session: Session, actor: User, contact_id: int) -> dict:
    """A contact for the edit form: fields, custom fields, and one identity per channel type."""
    _can_view(actor)
    contact = session.get(Contact, int(contact_id))
    if contact is None:
        raise ContactError("This contact no longer exists.")
    idents = session.exec(select(ContactIdentity).where(ContactIdentity.contact_id == contact.id)
                          .order_by(ContactIdentity.id)).all()
    by_type: dict[str, ContactIdentity] = {}
    for ident in idents:
        by_type.setdefault(ident.channel_type, ident)
    return {
        "id": contact.id,
        "fields": {name: getattr(contact, name) or "" for name in CONTACT_FIELDS},
        "custom_fields": dict(contact.custom_fields or {}),
        "identities": {t: (by_type[t].address if t in by_type else "") for t in CHANNEL_TYPES},
        "subscribed": {t: (by_type[t].subscribed if t in by_type else None) for t in CHANNEL_TYPES},
    }


def create_contact(*, session: Session, actor: User, fields: dict, custom_fields: dict | None = None,
                   identities: dict) -> Contact:
    _can_manage(actor)
    values = clean_fields(fields)
    custom = clean_custom_fields(custom_fields)
    addresses = clean_identities(identities)
    if not any(addresses.values()):
        raise ContactError("Add at least one way to reach this contact (a WhatsApp number, for example).")
    _check_addresses_free(session, None, addresses)
    if not values["country"]:
        values["country"] = country_of(addresses["whatsapp"] or addresses["sms"]) if (
            addresses["whatsapp"] or addresses["sms"]) else ""
    contact = Contact(**values, custom_fields=custom)
    session.add(contact)
    session.flush()
    for channel_type, address in addresses.items():
        if address:
            session.add(ContactIdentity(contact_id=contact.id, channel_type=channel_type, address=address))
    session.flush()
    audit.record(session=session, actor=actor, action="contact.create", target_type="contact", target_id=contact.id,
                 detail={"channels": [t for t, a in addresses.items() if a]})
    return contact


def update_contact(*, session: Session, actor: User, contact_id: int, fields: dict,
                   custom_fields: dict | None = None, identities: dict) -> Contact:
    """Replace the contact's fields and custom fields; add, change or remove one identity per channel.

    A changed address keeps its subscription state; a removed one is deleted (and so leaves the audience)."""
    _can_manage(actor)
    contact = session.get(Contact, int(contact_id))
    if contact is None:
        raise ContactError("This contact no longer exists.")
    values = clean_fields(fields)
    custom = clean_custom_fields(custom_fields)
    addresses = clean_identities(identities)
    if not any(addresses.values()):
        raise ContactError("A contact needs at least one channel; remove the contact's identities one at a "
                           "time only while another remains.")
    _check_addresses_free(session, contact.id, addresses)
    for name, value in values.items():
        setattr(contact, name, value)
    contact.custom_fields = custom
    contact.updated_at = utcnow()
    session.add(contact)
    existing = session.exec(select(ContactIdentity).where(ContactIdentity.contact_id == contact.id)).all()
    changed = []
    for channel_type, address in addresses.items():
        mine = [i for i in existing if i.channel_type == channel_type]
        if not address:
            for ident in mine:
                session.delete(ident)
                changed.append(f"-{channel_type}")
        elif not mine:
            session.add(ContactIdentity(contact_id=contact.id, channel_type=channel_type, address=address))
            changed.append(f"+{channel_type}")
        elif mine[0].address != address:
            mine[0].address = address
            session.add(mine[0])
            changed.append(f"~{channel_type}")
    session.flush()
    audit.record(session=session, actor=actor, action="contact.update", target_type="contact", target_id=contact.id,
                 detail={"identities": changed} if changed else {})
    return contact


def set_subscription(*, session: Session, actor: User, contact_id: int, channel_type: str,
                     subscribed: bool) -> ContactIdentity:
    """Subscribe or unsubscribe a contact on one channel type; recorded in the audit log."""
    _can_manage(actor)
    if channel_type not in CHANNEL_TYPES:
        raise ContactError(f"Unknown channel {str(channel_type)[:20]!r}.")
    contact = session.get(Contact, int(contact_id))
    if contact is None:
        raise ContactError("This contact no longer exists.")
    idents = session.exec(select(ContactIdentity).where(ContactIdentity.contact_id == contact.id,
                                                        ContactIdentity.channel_type == channel_type)).all()
    if not idents:
        raise ContactError(f"{display_name(contact)} has no {CHANNEL_LABELS[channel_type]} identity.")
    subscribed = bool(subscribed)
    now = utcnow()
    for ident in idents:
        if ident.subscribed != subscribed:
            ident.subscribed = subscribed
            ident.subscription_changed_at = now
            session.add(ident)
    session.flush()
    audit.record(session=session, actor=actor, action="contact.subscribe" if subscribed else "contact.unsubscribe",
                 target_type="contact", target_id=contact.id,
                 detail={"channel_type": channel_type, "addresses": [i.address for i in idents]})
    return idents[0]


def countries_in_use(*, session: Session, actor: User) -> list[str]:
    """The countries contacts have, for the filter (an index scan on contacts.country)."""
    _can_view(actor)
    return [c for c in session.exec(sa_select(Contact.country).where(Contact.country != "").distinct()
                                    .order_by(Contact.country)).scalars().all()]


# --- CSV import into the base ------------------------------------------------------------------

IMPORT_CHUNK = 1000  # rows per bulk statement: large enough for executemany, small enough for IN (...)
MAX_INVALID_SHOWN = 10_000


@dataclass
class ImportPreview:
    """What an import would do, computed without writing anything."""

    rows: int  # data rows in the file
    new: int  # unique valid numbers not yet in the base
    updated: int  # unique valid numbers already in the base (their contact is updated)
    invalid: int  # bad number, or a bad value in a contact field
    duplicates: int  # valid numbers repeated later in the file (the first occurrence is used)
    invalid_rows: list[InvalidRow]  # by line number, at most MAX_INVALID_SHOWN
    delimiter: str
    columns: list[str]
    id_column: str
    field_columns: list[str]  # columns stored as contact fields
    custom_columns: list[str]  # columns stored as custom fields (their keys)
    ignored_columns: list[str]  # columns whose name cannot become a field
    size_bytes: int

    @property
    def delimiter_name(self) -> str:
        return "semicolon" if self.delimiter == ";" else "comma"


@dataclass
class ImportResult:
    created: int
    updated: int
    invalid: int
    duplicates: int
    list_id: int | None = None
    list_name: str = ""
    added_to_list: int = 0  # contacts that were not in the list yet


@dataclass
class _Mapping:
    """How the file's columns land on a contact."""

    fields: dict[str, str] = field(default_factory=dict)  # column -> built-in field
    custom: dict[str, str] = field(default_factory=dict)  # column -> custom key
    ignored: list[str] = field(default_factory=list)


def _mapping(check: CsvCheck) -> _Mapping:
    out = _Mapping()
    for column in check.columns:
        name = column.strip().lower()
        if name in _ID_COLUMNS:
            continue  # the identifier (phone/id), or a second number column we do not guess about
        if name in CONTACT_FIELDS:
            out.fields[column] = name
        elif (key := custom_key(column)) and key not in CONTACT_FIELDS and key not in out.custom.values():
            out.custom[column] = key
        else:
            out.ignored.append(column)
    return out


@dataclass
class _ImportRow:
    line: int
    e164: str
    fields: dict[str, str]  # only the non-empty cells: a blank cell never erases what the base knows
    custom: dict[str, str]


def _import_rows(path: Path, check: CsvCheck, mapping: _Mapping, invalid: list[InvalidRow]) -> Iterator[_ImportRow]:
    """Unique valid rows with clean values; rows with a bad field value go to `invalid` instead."""
    for line, e164, values in iter_valid_rows(path, check):
        try:
            fields = {name: clean_field(name, values.get(column, "")) for column, name in mapping.fields.items()}
            custom = {}
            for column, key in mapping.custom.items():
                value = (values.get(column) or "").strip()
                if len(value) > CUSTOM_VALUE_LIMIT:
                    raise ContactError(f"{column} is longer than {CUSTOM_VALUE_LIMIT} characters.")
                if value:
                    custom[key] = value
        except ContactError as exc:
            invalid.append(InvalidRow(line, e164, str(exc).rstrip(".")))
            continue
        yield _ImportRow(line, e164, {k: v for k, v in fields.items() if v}, custom)


def _chunks(rows: Iterable[_ImportRow], size: int = IMPORT_CHUNK) -> Iterator[list[_ImportRow]]:
    chunk: list[_ImportRow] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _existing_whatsapp(session: Session, addresses: list[str]) -> dict[str, int]:
    """address -> contact id for the WhatsApp numbers already in the base (uq_identity_type_address)."""
    rows = session.connection().execute(
        sa_select(ContactIdentity.address, ContactIdentity.contact_id)
        .where(ContactIdentity.channel_type == "whatsapp", ContactIdentity.address.in_(addresses)))
    return {address: contact_id for address, contact_id in rows}


def _check_file(path) -> tuple[Path, CsvCheck]:
    path = Path(path)
    if not path.is_file():
        raise ContactError("The uploaded file is gone; upload it again.")
    try:
        return path, check_csv(path, max_bytes=get_settings().max_csv_bytes)
    except CsvRefused as exc:
        raise ContactError(str(exc).rstrip(".") + ".") from exc


def _sorted_invalid(check: CsvCheck, extra: list[InvalidRow]) -> list[InvalidRow]:
    return sorted([*check.invalid_rows, *extra], key=lambda r: r.line)[:MAX_INVALID_SHOWN]


def preview_import(*, session: Session, actor: User, path) -> ImportPreview:
    """Read the file and the base; say what an import would do. Writes nothing."""
    _can_manage(actor)
    path, check = _check_file(path)
    mapping = _mapping(check)
    bad_fields: list[InvalidRow] = []
    new = updated = 0
    for chunk in _chunks(_import_rows(path, check, mapping, bad_fields)):
        known = _existing_whatsapp(session, [r.e164 for r in chunk])
        updated += sum(1 for r in chunk if r.e164 in known)
        new += sum(1 for r in chunk if r.e164 not in known)
    return ImportPreview(
        rows=check.rows, new=new, updated=updated, invalid=check.invalid + len(bad_fields),
        duplicates=check.duplicates, invalid_rows=_sorted_invalid(check, bad_fields), delimiter=check.delimiter,
        columns=list(check.columns), id_column=check.id_column, field_columns=list(mapping.fields.values()),
        custom_columns=list(mapping.custom.values()), ignored_columns=mapping.ignored, size_bytes=check.size_bytes)


def _target_list(session: Session, actor: User, list_id, new_list_name) -> tuple[int, str] | None:
    """(id, name) of the list the import fills, created in the import's transaction when new."""
    try:
        if str(new_list_name or "").strip():
            created = lists.create_list(session=session, actor=actor, name=new_list_name,
                                        description="Created by a contact import")
            return created.id, created.name
        if list_id in (None, "", 0, "0"):
            return None
        found = lists.get_list(session=session, actor=actor, list_id=list_id)
        return found["id"], found["name"]
    except lists.ListError as exc:
        raise ContactError(str(exc)) from exc


def _apply_chunk(session: Session, chunk: list[_ImportRow], now) -> tuple[list[int], int, int]:
    """Insert the new contacts and update the known ones of one chunk; return (contact ids, created, updated)."""
    conn = session.connection()
    contacts, identities = Contact.__table__, ContactIdentity.__table__
    known = _existing_whatsapp(session, [r.e164 for r in chunk])
    fresh = [r for r in chunk if r.e164 not in known]
    known_rows = [r for r in chunk if r.e164 in known]
    ids: list[int] = []
    if known_rows:
        current = {row.id: row for row in conn.execute(
            sa_select(contacts.c.id, *[contacts.c[n] for n in CONTACT_FIELDS], contacts.c.custom_fields)
            .where(contacts.c.id.in_({known[r.e164] for r in known_rows})))}
        params = []
        for r in known_rows:
            cid = known[r.e164]
            base = current[cid]
            values = {n: r.fields.get(n, getattr(base, n) or "") for n in CONTACT_FIELDS}
            params.append({"cid": cid, **{f"v_{n}": v for n, v in values.items()},
                           "v_custom_fields": {**(base.custom_fields or {}), **r.custom}, "v_updated_at": now})
            ids.append(cid)
        conn.execute(update(contacts).where(contacts.c.id == bindparam("cid")).values(
            **{n: bindparam(f"v_{n}") for n in (*CONTACT_FIELDS, "custom_fields", "updated_at")}), params)
    if fresh:
        params = [{**{n: r.fields.get(n, "") for n in CONTACT_FIELDS}, "custom_fields": r.custom,
                   "created_at": now, "updated_at": now} for r in fresh]
        for p, r in zip(params, fresh):
            p["country"] = p["country"] or country_of(r.e164)
        new_ids = list(conn.execute(insert(contacts).returning(contacts.c.id, sort_by_parameter_order=True),
                                    params).scalars())
        conn.execute(insert(identities), [
            {"contact_id": cid, "channel_type": "whatsapp", "address": r.e164, "subscribed": True,
             "subscription_changed_at": now, "created_at": now} for cid, r in zip(new_ids, fresh)])
        ids.extend(new_ids)
    return ids, len(fresh), len(known_rows)


def _add_memberships(session: Session, list_id: int, contact_ids: list[int], now) -> int:
    conn = session.connection()
    members = ListMembership.__table__
    wanted = list(dict.fromkeys(contact_ids))
    already = set(conn.execute(sa_select(members.c.contact_id).where(
        members.c.list_id == list_id, members.c.contact_id.in_(wanted))).scalars())
    rows = [{"list_id": list_id, "contact_id": cid, "source": "import", "added_at": now}
            for cid in wanted if cid not in already]
    if rows:
        conn.execute(insert(members), rows)
    return len(rows)


def commit_import(*, session: Session, actor: User, path, list_id=None, new_list_name: str = "") -> ImportResult:
    """Upsert every valid row by WhatsApp number, and add them to a list if one is chosen.

    One transaction: the function commits when everything is written and rolls back everything on any
    failure (then raises ContactError), so call it with a session that has nothing else pending. New
    contacts are subscribed on WhatsApp; known contacts keep their subscription state and get the file's
    non-empty values (custom fields are merged)."""
    _can_manage(actor)
    try:
        path, check = _check_file(path)
        mapping = _mapping(check)
        target = _target_list(session, actor, list_id, new_list_name)
        now = utcnow()
        bad_fields: list[InvalidRow] = []
        created = updated = added = 0
        for chunk in _chunks(_import_rows(path, check, mapping, bad_fields)):
            ids, n_new, n_known = _apply_chunk(session, chunk, now)
            created, updated = created + n_new, updated + n_known
            if target is not None:
                added += _add_memberships(session, target[0], ids, now)
        result = ImportResult(created=created, updated=updated, invalid=check.invalid + len(bad_fields),
                              duplicates=check.duplicates, list_id=target[0] if target else None,
                              list_name=target[1] if target else "", added_to_list=added)
        audit.record(session=session, actor=actor, action="contacts.import", target_type="list" if target else "",
                     target_id=target[0] if target else "",
                     detail={"rows": check.rows, "created": created, "updated": updated, "invalid": result.invalid,
                             "duplicates": check.duplicates, "added_to_list": added, "file_bytes": check.size_bytes,
                             "delimiter": check.delimiter})
        session.commit()
        return result
    except ContactError:
        session.rollback()
        raise
    except (SQLAlchemyError, CsvRefused, OSError) as exc:
        session.rollback()
        raise ContactError("The import failed and nothing was changed. "
                           f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from exc


def custom_field_keys(*, session: Session, actor: User, sample: int = 2000) -> list[str]:
    """Custom field names in use, read from the most recent contacts (a bounded read, for pickers)."""
    _can_view(actor)
    keys: set[str] = set()
    rows = session.exec(sa_select(Contact.custom_fields).order_by(Contact.id.desc()).limit(sample)).scalars()
    for fields in rows:
        if isinstance(fields, dict):
            keys.update(str(k) for k in fields)
    return sorted(keys)
