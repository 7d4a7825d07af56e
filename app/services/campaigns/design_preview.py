"""The Design step's preview and "skipped" count, with bounded work per mapping change (issue 5).

The wizard recomputes these on every change of the mapping (each fallback typed, each field chosen). The
first version read the whole audience into memory for that (up to 200,000 recipients per change). Now:
- samples: the first few recipients, read with LIMIT (list/segment) or from the first lines of the CSV;
- skipped (recipients with an empty value and no fallback), list/segment audience: ONE SQL aggregate
  over the audience, when the values that can be empty are contact columns (first_name, city, ...).
  A mapping to a custom field (JSON, matched case-insensitively in Python) keeps the capped scan, now
  streamed rather than loaded at once;
- skipped, CSV audience: the file is read once per upload (per process, for CACHE_TTL_S) into "which
  columns are empty" masks with their counts; every later mapping change only sums those counts.
Both give the same numbers as `resolve()` row by row (tests/integration/test_design_preview.py).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from itertools import islice
from typing import Any

from sqlalchemy import case, func, or_, select
from sqlmodel import Session

from app.domain import permissions as perm
from app.domain.variables import CONTACT_FIELDS, SOURCES, _lookup, resolve
from app.models import AudienceUpload, Campaign, Contact, ContactIdentity, Template, User
from app.services.audiences.summary import AudienceError, audience_contact_ids
from app.whatsapp.components import clean_parameter_text

SAMPLES = 5
SKIP_COUNT_LIMIT = 200_000  # recipients examined by the scan kept for custom-field mappings
CACHE_TTL_S = 300.0  # a CSV's masks are reused this long (unsubscribes since then are not reflected)
_CACHE_MAX = 4
_CONTACT_COLUMNS = ("first_name", "last_name", "email", "country", "city", "language", "custom_fields")
_SQL_COLUMNS = frozenset(CONTACT_FIELDS) - {"phone"}  # plain text columns of `contacts`


# --- what the mapping needs from each recipient ---------------------------------------------------

def _needs(keys: list[str], mapping: dict) -> tuple[bool, list[str]]:
    """(everyone misses a value, the recipient values whose emptiness skips a recipient).

    Mirrors `resolve()`: a key whose value cannot come from the recipient (fixed text, or nothing mapped)
    is missing for everyone or no one; a recipient value with a non-blank fallback never skips anyone."""
    everyone, per_recipient = False, []
    for key in keys:
        spec = mapping.get(key) if isinstance(mapping.get(key), dict) else {}
        if clean_parameter_text(spec.get("fallback")):
            continue
        source = str(spec.get("source") or "").lower()
        if source == "text":
            everyone |= not clean_parameter_text(spec.get("value", spec.get("text", spec.get("key"))))
        elif source in SOURCES and spec.get("key"):
            per_recipient.append(f"{source}:{spec['key']}")
        else:
            everyone = True
    return everyone, per_recipient


# --- list / segment ----------------------------------------------------------------------------------

def audience_contacts(session: Session, campaign: Campaign, *, limit: int | None, address: str | None = None):
    """(address, contact dict) of the audience's subscribed WhatsApp identities in the freeze's order
    (campaign_sending._list_or_segment_rows), streamed, at most `limit`."""
    ref = campaign.audience_list_id if campaign.audience_kind == "list" else campaign.audience_segment_id
    ids = audience_contact_ids(campaign.audience_kind, ref, session=session)
    query = (
        select(ContactIdentity.address, *(getattr(Contact, c) for c in _CONTACT_COLUMNS))
        .join(Contact, Contact.id == ContactIdentity.contact_id)
        .where(ContactIdentity.channel_type == "whatsapp", ContactIdentity.subscribed.is_(True),
               ContactIdentity.contact_id.in_(ids.scalar_subquery()))
        .order_by(ContactIdentity.id)
    )
    if address is not None:
        query = query.where(ContactIdentity.address == address)
    if limit is not None:
        query = query.limit(limit)
    for row in session.execute(query.execution_options(yield_per=2000)):
        contact = dict(zip(_CONTACT_COLUMNS, row[1:]))
        contact["phone"] = row[0]
        yield row[0], contact


def _blank(column):
    """SQL for clean_parameter_text(column) == "": new lines and tabs count as spaces, then trim."""
    cleaned = func.replace(func.replace(func.replace(func.coalesce(column, ""), "\r", " "), "\n", " "), "\t", " ")
    return func.trim(cleaned) == ""


def _contact_skips(session: Session, campaign: Campaign, keys: list[str], mapping: dict, needs: list[str]):
    """(examined, skipped, capped) for a list/segment audience."""
    ref = campaign.audience_list_id if campaign.audience_kind == "list" else campaign.audience_segment_id
    ids = audience_contact_ids(campaign.audience_kind, ref, session=session)
    fields = [n.split(":", 1)[1] for n in needs]
    sql_ok = all(n.startswith("field:") and f in CONTACT_FIELDS for n, f in zip(needs, fields))
    if sql_ok:
        # A mapping to a CSV column on a contact audience has no value for anyone: `_needs` put it in
        # `needs` as "column:..."; that case is not sql_ok and falls to the scan (it is rare and small).
        empty = [_blank(getattr(Contact, f)) for f in fields if f in _SQL_COLUMNS]  # phone is never blank
        skipped = func.sum(case((or_(*empty), 1), else_=0)) if empty else func.sum(0)
        total, skip = session.execute(
            select(func.count(), skipped)
            .select_from(ContactIdentity).join(Contact, Contact.id == ContactIdentity.contact_id)
            .where(ContactIdentity.channel_type == "whatsapp", ContactIdentity.subscribed.is_(True),
                   ContactIdentity.contact_id.in_(ids.scalar_subquery()))).one()
        return int(total or 0), int(skip or 0), False
    examined = skipped = 0
    for _address, contact in audience_contacts(session, campaign, limit=SKIP_COUNT_LIMIT + 1):
        if examined == SKIP_COUNT_LIMIT:
            return examined, skipped, True
        examined += 1
        skipped += not resolve(keys, mapping, contact=contact).ok
    return examined, skipped, False


# --- CSV -----------------------------------------------------------------------------------------------

_cache: dict[tuple, tuple[float, list[str], Counter]] = {}
_cache_lock = threading.Lock()


def _csv_rows(session: Session, upload: AudienceUpload):
    from app.services.sending.lifecycle import _csv_path
    from app.services.audiences.csv_reader import CsvCheck, iter_valid_rows

    path = _csv_path(upload)
    if not path.exists():
        raise AudienceError("The campaign's CSV file is gone; upload it again.")
    # The upload's recorded facts stand in for a second check of the whole file before reading it.
    check = CsvCheck(delimiter=upload.delimiter, columns=list(upload.columns), id_column=upload.id_column,
                     size_bytes=upload.size_bytes)
    return iter_valid_rows(path, check)


def _first_csv_rows(session: Session, upload: AudienceUpload, samples: int, scan: int = 1000) -> list:
    """The first `samples` rows the freeze would send to (unsubscribed numbers left out), reading at most
    `scan` lines of the file."""
    rows = [(e164, None, row) for _l, e164, row in islice(_csv_rows(session, upload), scan)]
    out = []
    for start in range(0, len(rows), 200):
        chunk = rows[start:start + 200]
        gone = set(session.execute(select(ContactIdentity.address).where(
            ContactIdentity.channel_type == "whatsapp", ContactIdentity.subscribed.is_(False),
            ContactIdentity.address.in_([r[0] for r in chunk]))).scalars())
        out += [r for r in chunk if r[0] not in gone]
        if len(out) >= samples:
            break
    return out[:samples]


def _csv_masks(session: Session, upload: AudienceUpload) -> tuple[list[str], Counter]:
    """(columns, Counter of bitmasks of blank columns) over the rows the freeze would send to."""
    # The upload's time too: a database rebuilt (or truncated by tests) may reuse the id for another upload.
    key = (str(session.get_bind().url), upload.id, upload.sha256, upload.created_at)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < CACHE_TTL_S:
            return hit[1], hit[2]
    unsubscribed = set(session.execute(select(ContactIdentity.address).where(
        ContactIdentity.channel_type == "whatsapp", ContactIdentity.subscribed.is_(False))).scalars())
    columns = list(upload.columns)
    masks: Counter = Counter()
    for _line, e164, row in _csv_rows(session, upload):
        if e164 in unsubscribed:
            continue
        mask = 0
        for i, column in enumerate(columns):
            if not clean_parameter_text(row.get(column)):
                mask |= 1 << i
        masks[mask] += 1
    with _cache_lock:
        if len(_cache) >= _CACHE_MAX:
            _cache.pop(min(_cache, key=lambda k: _cache[k][0]))
        _cache[key] = (time.monotonic(), columns, masks)
    return columns, masks


def _csv_skips(session: Session, campaign: Campaign, needs: list[str], everyone: bool):
    upload = session.get(AudienceUpload, campaign.audience_upload_id)
    if upload is None:
        raise AudienceError("The campaign's CSV file is gone; upload it again.")
    columns, masks = _csv_masks(session, upload)
    total = sum(masks.values())
    if everyone:
        return total, total, False
    required = 0
    index = {c: i for i, c in enumerate(columns)}
    for need in needs:
        name = need.split(":", 1)[1]
        column = _lookup({c: c for c in columns}, name)  # exact, then case-insensitive, as resolve() reads a row
        if column is None:
            return total, total, False  # no such column: nobody has a value
        required |= 1 << index[column]
    return total, sum(n for mask, n in masks.items() if mask & required), False


# --- the preview -------------------------------------------------------------------------------------------

def design_preview(*, session: Session, actor: User | None, campaign_id: Any, samples: int = SAMPLES):
    """The first recipients' real values, and how many recipients would be skipped for a missing value."""
    from app.services.campaigns.drafts import DesignPreview, _audience_ready, _campaign, _template_keys, _user

    _user(session, actor, perm.CAMPAIGNS_VIEW)
    campaign = _campaign(session, campaign_id)
    template = session.get(Template, campaign.template_id) if campaign.template_id else None
    out = DesignPreview()
    if template is None or not _audience_ready(campaign):
        return out
    out.keys = _template_keys(template)
    mapping = campaign.variable_mapping or {}
    everyone, needs = _needs(out.keys, mapping)
    try:
        if campaign.audience_kind == "csv":
            upload = session.get(AudienceUpload, campaign.audience_upload_id)
            first = [] if upload is None else _first_csv_rows(session, upload, samples)
            out.examined, out.skipped, out.capped = _csv_skips(session, campaign, needs, everyone)
        else:
            first = [(a, c, None) for a, c in audience_contacts(session, campaign, limit=samples)]
            everyone |= any(n.startswith("column:") for n in needs)  # a contact has no file columns
            if everyone:
                out.examined = out.skipped = _contact_skips(session, campaign, [], {}, [])[0]
            else:
                out.examined, out.skipped, out.capped = _contact_skips(session, campaign, out.keys, mapping, needs)
    except (AudienceError, ValueError):  # the audience vanished meanwhile: step 1 says so
        return type(out)(keys=out.keys)
    for address, contact, row in first:
        res = resolve(out.keys, mapping, contact=contact, row=row)
        out.samples.append({"address": address, "values": res.values, "missing": list(res.missing)})
    return out
