"""A campaign's recipients, read one way by everyone who needs them.

The freeze (app.services.sending.freeze), the Design step's preview and skip count
(app.services.campaigns.design_preview) and the one-number trial send (app.services.campaigns.trial_send)
all read the audience here, so they agree on who receives a campaign and in which order:
- a list or a segment: its members' WhatsApp identities that are subscribed, one per number (an address
  is unique per channel type), in identity id order;
- a CSV file: its valid rows, the first occurrence of each number only (`iter_valid_rows`), in file
  order, minus the numbers known to have unsubscribed (a file is no licence to message someone who said
  STOP).

`iter_recipients` yields `Recipient(address, contact_id, contact, row)`: `contact` (list/segment) holds
the asked-for contact columns plus "phone"; `row` (CSV) holds the file's columns. The freeze's fast path
needs raw rows with only the columns it maps: `contact_rows` gives them, from the same query
(`recipient_select`), which also serves aggregates (the preview's skip count).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import Row, Select, select
from sqlmodel import Session

from app.domain.variables import CONTACT_TEXT_FIELDS
from app.models import AudienceUpload, Campaign, Contact, ContactIdentity
from app.services.audiences.csv_reader import CsvCheck, iter_valid_rows
from app.services.audiences.summary import AudienceError, audience_contact_ids
from app.settings import get_settings

# What a variable may read from a contact: the text fields, plus custom fields (the phone is the address).
CONTACT_COLUMNS: tuple[str, ...] = (*CONTACT_TEXT_FIELDS, "custom_fields")
CSV_GONE = "The campaign's CSV file is gone; upload it again."
_UNSUBSCRIBED_CHUNK = 200  # numbers looked up at once when only the first few recipients are read
_STREAM_ROWS = 2000


class Recipient(NamedTuple):
    address: str  # E.164
    contact_id: int | None  # None for a CSV row
    contact: dict[str, Any] | None  # list/segment: the contact columns read, plus "phone"
    row: dict[str, str] | None  # CSV: {column: value}


# --- list / segment ------------------------------------------------------------------------------


def _audience_ref(campaign: Campaign) -> Any:
    return campaign.audience_list_id if campaign.audience_kind == "list" else campaign.audience_segment_id


def recipient_select(session: Session, campaign: Campaign, *columns: Any) -> Select:
    """SELECT `columns` over a list/segment audience's subscribed WhatsApp identities joined to their
    contacts (no order: add `.order_by(ContactIdentity.id)` for the recipients' order)."""
    ids = audience_contact_ids(campaign.audience_kind, _audience_ref(campaign), session=session)
    return (
        select(*columns)
        .select_from(ContactIdentity)
        .join(Contact, Contact.id == ContactIdentity.contact_id)
        .where(
            ContactIdentity.channel_type == "whatsapp",
            ContactIdentity.subscribed.is_(True),
            ContactIdentity.contact_id.in_(ids.scalar_subquery()),
        )
    )


def contact_rows(
    session: Session,
    campaign: Campaign,
    fields: Iterable[str] = CONTACT_COLUMNS,
    *,
    address: str | None = None,
    limit: int | None = None,
    stream: bool = False,
    after: int | None = None,
    keyed: bool = False,
) -> Iterator[Row]:
    """(address, contact id, *fields) per recipient of a list/segment audience, in recipient order.

    `stream` reads in batches (a long scan that may stop early); without it the database driver hands
    over the whole result. `keyed` adds the recipient's key (its identity id, which orders recipients) as
    a last column and `after` starts after a key: the streaming freeze reads page by page that way."""
    keys = (ContactIdentity.id,) if keyed else ()
    query = recipient_select(
        session, campaign, ContactIdentity.address, Contact.id, *(getattr(Contact, f) for f in fields), *keys
    ).order_by(ContactIdentity.id)
    if after is not None:
        query = query.where(ContactIdentity.id > after)
    if address is not None:
        query = query.where(ContactIdentity.address == address)
    if limit is not None:
        query = query.limit(limit)
    if stream:
        query = query.execution_options(yield_per=_STREAM_ROWS)
    return iter(session.execute(query))


def has_recipients(session: Session, campaign: Campaign) -> bool:
    """Whether a list/segment audience reaches anyone on WhatsApp today (one indexed probe, not a count)."""
    return session.execute(recipient_select(session, campaign, ContactIdentity.id).limit(1)).first() is not None


# --- CSV -------------------------------------------------------------------------------------------


def csv_path(upload: AudienceUpload) -> Path:
    path = Path(upload.stored_path)
    if not path.is_absolute() and not path.exists():
        path = get_settings().upload_dir / path
    return path


def csv_upload(session: Session, campaign: Campaign) -> AudienceUpload:
    """The campaign's uploaded file, or AudienceError when its record or the file itself is gone."""
    upload = session.get(AudienceUpload, campaign.audience_upload_id) if campaign.audience_upload_id else None
    if upload is None or not csv_path(upload).exists():
        raise AudienceError(CSV_GONE)
    return upload


def unsubscribed_numbers(session: Session, addresses: list[str] | None) -> set[str]:
    """Unsubscribed WhatsApp numbers among `addresses` (None: all of them)."""
    query = select(ContactIdentity.address).where(
        ContactIdentity.channel_type == "whatsapp", ContactIdentity.subscribed.is_(False)
    )
    if addresses is not None:
        query = query.where(ContactIdentity.address.in_(addresses))
    return set(session.execute(query).scalars())


def csv_rows(
    session: Session, upload: AudienceUpload, *, address: str | None = None, limit: int | None = None
) -> Iterator[tuple[str, dict[str, str]]]:
    """(E.164, row) per recipient of an uploaded file, in file order (CsvRefused if it changed on disk).

    Reading the whole file, the unsubscribed numbers are loaded once; reading only the first few (a
    `limit` or one `address`), they are looked up for those rows only."""
    rows = ((e164, row) for _line, e164, row in _valid_rows(upload) if address is None or e164 == address)
    if limit is None and address is None:
        gone = unsubscribed_numbers(session, None)
        yield from ((e164, row) for e164, row in rows if e164 not in gone)
        return
    left = limit
    while left is None or left > 0:
        chunk = list(islice(rows, _UNSUBSCRIBED_CHUNK))
        if not chunk:
            return
        gone = unsubscribed_numbers(session, [e164 for e164, _row in chunk])
        for e164, row in chunk:
            if e164 in gone:
                continue
            yield e164, row
            if left is not None:
                left -= 1
                if left == 0:
                    return


def _valid_rows(upload: AudienceUpload) -> Iterator[tuple[int, str, dict[str, str]]]:
    # The upload's recorded facts stand in for a second check of the whole file before reading it.
    check = CsvCheck(
        delimiter=upload.delimiter,
        columns=list(upload.columns),
        id_column=upload.id_column,
        size_bytes=upload.size_bytes,
    )
    return iter_valid_rows(csv_path(upload), check)


def keyed_csv_rows(
    session: Session, upload: AudienceUpload, *, after_line: int = 0
) -> Iterator[tuple[int, str, dict[str, str]]]:
    """(line, E.164, row) per recipient of an uploaded file after file line `after_line`, in file order: the
    same recipients as `csv_rows`, keyed by their line (the streaming freeze resumes after one). The first
    occurrence of a number still wins over the whole file, and the numbers unsubscribed now are left out."""
    gone = unsubscribed_numbers(session, None)
    for line, e164, row in _valid_rows(upload):
        if line > after_line and e164 not in gone:
            yield line, e164, row


# --- any audience ----------------------------------------------------------------------------------


def iter_recipients(
    session: Session,
    campaign: Campaign,
    *,
    fields: Iterable[str] = CONTACT_COLUMNS,
    address: str | None = None,
    limit: int | None = None,
    stream: bool = False,
) -> Iterator[Recipient]:
    """The campaign's recipients (at most `limit`; only `address` if given), in the order they are sent to.

    Raises AudienceError when the audience is gone (a segment deleted, the file missing)."""
    if campaign.audience_kind == "csv":
        for e164, row in csv_rows(session, csv_upload(session, campaign), address=address, limit=limit):
            yield Recipient(e164, None, None, row)
        return
    if campaign.audience_kind not in ("list", "segment"):
        raise AudienceError("Choose the audience: a contact list, a segment or a file.")
    fields = tuple(fields)
    for address_, contact_id, *values in contact_rows(
        session, campaign, fields, address=address, limit=limit, stream=stream
    ):
        contact = dict(zip(fields, values, strict=True))
        contact["phone"] = address_
        yield Recipient(address_, contact_id, contact, None)
