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
Both give the same numbers as `resolve()` row by row (tests/integration/test_design_preview.py). The
recipients are read by `app.services.audiences.recipients`, as the freeze and the trial send read them.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import case, func, or_
from sqlmodel import Session

from app.domain import permissions as perm
from app.domain.template_components import clean_parameter_text
from app.domain.variables import CONTACT_FIELDS, CONTACT_TEXT_FIELDS, SOURCES, _lookup, resolve
from app.models import AudienceUpload, Campaign, Contact, Template, User
from app.services.access import get_or_raise, require
from app.services.audiences.recipients import csv_rows, csv_upload, iter_recipients, recipient_select
from app.services.audiences.summary import AudienceError
from app.services.campaigns.drafts import CampaignError
from app.services.sending.readiness import audience_ref, template_keys

SAMPLES = 5
SKIP_COUNT_LIMIT = 200_000  # recipients examined by the scan kept for custom-field mappings
CACHE_TTL_S = 300.0  # a CSV's masks are reused this long (unsubscribes since then are not reflected)
_CACHE_MAX = 4
_SQL_COLUMNS = frozenset(CONTACT_TEXT_FIELDS)  # plain text columns of `contacts` (the phone is never blank)


@dataclass
class DesignPreview:
    keys: list[str] = field(default_factory=list)
    samples: list[dict] = field(default_factory=list)  # {"address", "values", "missing"} of the first recipients
    skipped: int = 0  # recipients with an empty value and no fallback
    examined: int = 0
    capped: bool = False


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


def _blank(column):
    """SQL for clean_parameter_text(column) == "": new lines and tabs count as spaces, then trim."""
    cleaned = func.replace(func.replace(func.replace(func.coalesce(column, ""), "\r", " "), "\n", " "), "\t", " ")
    return func.trim(cleaned) == ""


def _contact_skips(session: Session, campaign: Campaign, keys: list[str], mapping: dict, needs: list[str]):
    """(examined, skipped, capped) for a list/segment audience."""
    fields = [n.split(":", 1)[1] for n in needs]
    sql_ok = all(n.startswith("field:") and f in CONTACT_FIELDS for n, f in zip(needs, fields, strict=True))
    if sql_ok:
        # A mapping to a CSV column on a contact audience has no value for anyone: `_needs` put it in
        # `needs` as "column:..."; that case is not sql_ok and falls to the scan (it is rare and small).
        empty = [_blank(getattr(Contact, f)) for f in fields if f in _SQL_COLUMNS]  # phone is never blank
        skipped = func.sum(case((or_(*empty), 1), else_=0)) if empty else func.sum(0)
        total, skip = session.execute(recipient_select(session, campaign, func.count(), skipped)).one()
        return int(total or 0), int(skip or 0), False
    examined = skipped = 0
    for _address, _cid, contact, _row in iter_recipients(session, campaign, limit=SKIP_COUNT_LIMIT + 1, stream=True):
        if examined == SKIP_COUNT_LIMIT:
            return examined, skipped, True
        examined += 1
        skipped += not resolve(keys, mapping, contact=contact).ok
    return examined, skipped, False


# --- CSV -----------------------------------------------------------------------------------------------

_cache: dict[tuple, tuple[float, list[str], Counter]] = {}
_cache_lock = threading.Lock()


def _csv_masks(session: Session, upload: AudienceUpload) -> tuple[list[str], Counter]:
    """(columns, Counter of bitmasks of blank columns) over the rows the freeze would send to."""
    # The upload's time too: a database rebuilt (or truncated by tests) may reuse the id for another upload.
    key = (str(session.get_bind().url), upload.id, upload.sha256, upload.created_at)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < CACHE_TTL_S:
            return hit[1], hit[2]
    columns = list(upload.columns)
    masks: Counter = Counter()
    for _e164, row in csv_rows(session, upload):
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


def _csv_skips(session: Session, upload: AudienceUpload, needs: list[str], everyone: bool):
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


def design_preview(*, session: Session, actor: User | None, campaign_id: Any, samples: int = SAMPLES) -> DesignPreview:
    """The first recipients' real values, and how many recipients would be skipped for a missing value."""
    require(session, actor, perm.CAMPAIGNS_VIEW)
    campaign = get_or_raise(session, Campaign, campaign_id, CampaignError, "That campaign does not exist.")
    template = session.get(Template, campaign.template_id) if campaign.template_id else None
    out = DesignPreview()
    if template is None or audience_ref(campaign) is None:
        return out
    out.keys = template_keys(template)
    mapping = campaign.variable_mapping or {}
    everyone, needs = _needs(out.keys, mapping)
    try:
        first = list(iter_recipients(session, campaign, limit=samples, stream=True))
        if campaign.audience_kind == "csv":
            upload = csv_upload(session, campaign)
            out.examined, out.skipped, out.capped = _csv_skips(session, upload, needs, everyone)
        else:
            everyone |= any(n.startswith("column:") for n in needs)  # a contact has no file columns
            if everyone:
                out.examined = out.skipped = _contact_skips(session, campaign, [], {}, [])[0]
            else:
                out.examined, out.skipped, out.capped = _contact_skips(session, campaign, out.keys, mapping, needs)
    except (AudienceError, ValueError):  # the audience vanished meanwhile: step 1 says so
        return DesignPreview(keys=out.keys)
    for address, _cid, contact, row in first:
        res = resolve(out.keys, mapping, contact=contact, row=row)
        out.samples.append({"address": address, "values": res.values, "missing": list(res.missing)})
    return out
