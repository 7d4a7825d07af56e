"""Importing contacts into the base from a CSV (SPEC S5, S14): a preview that writes nothing, then a commit.

The import (`preview_import` / `commit_import`) reuses the campaign CSV reader (`app.services.audiences.csv_reader`:
the same separator, header, `phone`/`id` column, country-code and 20 MB rules) and the contact field rules
(`app.services.audiences.contacts`), and upserts by the WhatsApp number in E.164. The preview writes nothing.
The commit is one transaction of bulk statements (Core `executemany`, chunked): either every row lands or,
on any failure, nothing does. An import never re-subscribes a contact who unsubscribed: consent is changed
only by the contact or by hand. Errors a user can fix raise `ContactError`, as the contact form's do.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import bindparam, insert, update
from sqlalchemy import select as sa_select
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from app.domain import permissions as perm
from app.models import Contact, ContactIdentity, ListMembership, User
from app.services.access import require
from app.services.accounts import audit
from app.services.audiences import lists
from app.services.audiences.channel_flags import CHANNEL_BITS
from app.services.audiences.contacts import (
    CONTACT_FIELDS,
    CUSTOM_VALUE_LIMIT,
    IDENTIFIER_COLUMNS,
    ContactError,
    clean_field,
    country_of,
    custom_key,
)
from app.services.audiences.csv_reader import CsvCheck, CsvRefused, InvalidRow, check_csv, iter_valid_rows
from app.settings import get_settings
from app.timeutil import utcnow

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
        if name in IDENTIFIER_COLUMNS:
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
        sa_select(ContactIdentity.address, ContactIdentity.contact_id).where(
            ContactIdentity.channel_type == "whatsapp", ContactIdentity.address.in_(addresses)
        )
    )
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
    require(session, actor, perm.AUDIENCES_MANAGE)
    path, check = _check_file(path)
    mapping = _mapping(check)
    bad_fields: list[InvalidRow] = []
    new = updated = 0
    for chunk in _chunks(_import_rows(path, check, mapping, bad_fields)):
        known = _existing_whatsapp(session, [r.e164 for r in chunk])
        updated += sum(1 for r in chunk if r.e164 in known)
        new += sum(1 for r in chunk if r.e164 not in known)
    return ImportPreview(
        rows=check.rows,
        new=new,
        updated=updated,
        invalid=check.invalid + len(bad_fields),
        duplicates=check.duplicates,
        invalid_rows=_sorted_invalid(check, bad_fields),
        delimiter=check.delimiter,
        columns=list(check.columns),
        id_column=check.id_column,
        field_columns=list(mapping.fields.values()),
        custom_columns=list(mapping.custom.values()),
        ignored_columns=mapping.ignored,
        size_bytes=check.size_bytes,
    )


def _target_list(session: Session, actor: User, list_id, new_list_name) -> tuple[int, str] | None:
    """(id, name) of the list the import fills, created in the import's transaction when new."""
    try:
        if str(new_list_name or "").strip():
            created = lists.create_list(
                session=session, actor=actor, name=new_list_name, description="Created by a contact import"
            )
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
        current = {
            row.id: row
            for row in conn.execute(
                sa_select(contacts.c.id, *[contacts.c[n] for n in CONTACT_FIELDS], contacts.c.custom_fields).where(
                    contacts.c.id.in_({known[r.e164] for r in known_rows})
                )
            )
        }
        params = []
        for r in known_rows:
            cid = known[r.e164]
            base = current[cid]
            values = {n: r.fields.get(n, getattr(base, n) or "") for n in CONTACT_FIELDS}
            params.append(
                {
                    "cid": cid,
                    **{f"v_{n}": v for n, v in values.items()},
                    "v_custom_fields": {**(base.custom_fields or {}), **r.custom},
                    "v_updated_at": now,
                }
            )
            ids.append(cid)
        conn.execute(
            update(contacts)
            .where(contacts.c.id == bindparam("cid"))
            .values(**{n: bindparam(f"v_{n}") for n in (*CONTACT_FIELDS, "custom_fields", "updated_at")}),
            params,
        )
    if fresh:
        # channel_flags: what the contact_identities trigger (migration 0005) computes for the one subscribed
        # WhatsApp identity inserted below; written up front, the trigger finds nothing to change and does not
        # rewrite every new contact row (a second row version per contact on PostgreSQL).
        params = [
            {
                **{n: r.fields.get(n, "") for n in CONTACT_FIELDS},
                "custom_fields": r.custom,
                "channel_flags": CHANNEL_BITS["whatsapp"],
                "created_at": now,
                "updated_at": now,
            }
            for r in fresh
        ]
        for p, r in zip(params, fresh, strict=True):
            p["country"] = p["country"] or country_of(r.e164)
        new_ids = list(
            conn.execute(insert(contacts).returning(contacts.c.id, sort_by_parameter_order=True), params).scalars()
        )
        conn.execute(
            insert(identities),
            [
                {
                    "contact_id": cid,
                    "channel_type": "whatsapp",
                    "address": r.e164,
                    "subscribed": True,
                    "subscription_changed_at": now,
                    "created_at": now,
                }
                for cid, r in zip(new_ids, fresh, strict=True)
            ],
        )
        ids.extend(new_ids)
    return ids, len(fresh), len(known_rows)


def _add_memberships(session: Session, list_id: int, contact_ids: list[int], now) -> int:
    conn = session.connection()
    members = ListMembership.__table__
    wanted = list(dict.fromkeys(contact_ids))
    already = set(
        conn.execute(
            sa_select(members.c.contact_id).where(members.c.list_id == list_id, members.c.contact_id.in_(wanted))
        ).scalars()
    )
    rows = [
        {"list_id": list_id, "contact_id": cid, "source": "import", "added_at": now}
        for cid in wanted
        if cid not in already
    ]
    if rows:
        conn.execute(insert(members), rows)
    return len(rows)


def commit_import(*, session: Session, actor: User, path, list_id=None, new_list_name: str = "") -> ImportResult:
    """Upsert every valid row by WhatsApp number, and add them to a list if one is chosen.

    One transaction: the function commits when everything is written and rolls back everything on any
    failure (then raises ContactError), so call it with a session that has nothing else pending. New
    contacts are subscribed on WhatsApp; known contacts keep their subscription state and get the file's
    non-empty values (custom fields are merged)."""
    actor = require(session, actor, perm.AUDIENCES_MANAGE)
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
        result = ImportResult(
            created=created,
            updated=updated,
            invalid=check.invalid + len(bad_fields),
            duplicates=check.duplicates,
            list_id=target[0] if target else None,
            list_name=target[1] if target else "",
            added_to_list=added,
        )
        audit.record(
            session=session,
            actor=actor,
            action="contacts.import",
            target_type="list" if target else "",
            target_id=target[0] if target else "",
            detail={
                "rows": check.rows,
                "created": created,
                "updated": updated,
                "invalid": result.invalid,
                "duplicates": check.duplicates,
                "added_to_list": added,
                "file_bytes": check.size_bytes,
                "delimiter": check.delimiter,
            },
        )
        session.commit()
        return result
    except ContactError:
        session.rollback()
        raise
    except (SQLAlchemyError, CsvRefused, OSError) as exc:
        session.rollback()
        raise ContactError(
            f"The import failed and nothing was changed. ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
        ) from exc
