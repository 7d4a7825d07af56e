""" "Send again to…" (issue 15): a new Draft whose audience is a frozen copy of some of a campaign's recipients.

Who: `failed` for a reason worth trying later (`insight.RESEND_LATER_CODES`), `not_read` N hours after
it was sent, `replied`, or `button` (pressed the quick-reply button with that payload).

How the copy is stored: as a CSV audience file written by us (column `phone` plus one column per template
variable holding the value the recipient was sent), registered like an uploaded file and checked by the
same `csv_reader.check_csv`. A file is the one audience kind that is truly frozen (a list can be edited, a
segment re-evaluates), it keeps numbers that came from a file and have no contact, and it keeps each
recipient's personalised values. Its freeze still drops numbers that unsubscribed since (as for any
file), and the campaign's unique (campaign, number) rows mean nobody gets the new campaign twice.

Who may: anyone who may edit campaigns (campaigns:edit) and see the source campaign (campaigns:view), basic
users included. The file is not data a user brings in but a frozen subset of an existing campaign's
recipients (SPEC S1: basic users send to existing audiences), so it is recorded as derived
(`AudienceUpload.derived_from_campaign_id`): the draft may keep and send it without `audiences:manage`,
while uploading a file, or swapping in another one, still needs that right (README Security).

The new Draft opens at step 2 ("Design your message") with the same channel and template, each variable
mapped to its column (with the original fallback). It is a new campaign: the original is never changed.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from sqlalchemy import exists, func, select
from sqlmodel import Session

from app.domain import permissions as perm
from app.domain.campaign_status import DRAFT, R_DELIVERED, R_SENT
from app.models import Campaign, CampaignRecipient, InboundMessage, User
from app.services.access import require
from app.services.accounts import audit
from app.services.audiences import uploads
from app.services.audiences.csv_reader import CsvRefused, check_csv
from app.services.campaigns import drafts
from app.services.campaigns.insight import HELD_BACK, RESEND_LATER_CODES
from app.services.campaigns.replies import BUTTON_KINDS, reply_join
from app.services.campaigns.results import CampaignNotFound
from app.timeutil import utcnow

KINDS = {
    "failed": "Failed for a retryable reason",
    "not_read": "Not read after {hours} h",
    "replied": "Replied",
    "button": "Clicked “{button}”",
}
MAX_HOURS = 24 * 30
_CHUNK = 2000


class SendAgainError(ValueError):
    """Refused; the message is shown as is and nothing was created."""


def _campaign(session: Session, campaign_id: Any) -> Campaign:
    try:
        campaign = session.get(Campaign, int(campaign_id))
    except (TypeError, ValueError):
        campaign = None
    if campaign is None:
        raise CampaignNotFound()
    return campaign


def _hours(value: Any) -> int:
    try:
        hours = int(str(value).strip())
    except (TypeError, ValueError):
        raise SendAgainError("Say after how many hours unread messages count (a whole number).") from None
    if not 1 <= hours <= MAX_HOURS:
        raise SendAgainError(f"Hours must be between 1 and {MAX_HOURS}.")
    return hours


def _condition(campaign: Campaign, kind: str, hours: Any, button: Any):
    """The WHERE clause on the campaign's recipient rows for one choice (raises on a bad choice)."""
    r = CampaignRecipient
    if kind == "failed":
        # Failed with a temporary reason, or held back by Meta's per-user limit (status "limited", #131049).
        return (r.status.in_(HELD_BACK)) & r.error_code.in_(sorted(RESEND_LATER_CODES))
    if kind == "not_read":
        cutoff = utcnow() - timedelta(hours=_hours(hours))
        return r.status.in_((R_SENT, R_DELIVERED)) & (r.sent_at <= cutoff)
    if kind in ("replied", "button"):
        reply = select(InboundMessage.id).where(reply_join(campaign))
        if kind == "button":
            payload = str(button or "").strip()[:256] if isinstance(button, (str, int)) else ""
            if not payload:
                raise SendAgainError("Choose which button.")
            reply = reply.where(InboundMessage.kind.in_(BUTTON_KINDS), InboundMessage.payload == payload)
        return exists(reply)
    raise SendAgainError("Choose who to send again to.")


def label(kind: str, hours: Any = "", button: Any = "") -> str:
    return KINDS.get(kind, kind).format(hours=hours, button=str(button)[:40])


def count(
    *, session: Session, actor: User | None, campaign_id: Any, kind: str, hours: Any = 24, button: Any = ""
) -> int:
    """How many recipients a choice would copy (shown before creating the draft)."""
    require(session, actor, perm.CAMPAIGNS_VIEW)
    c = _campaign(session, campaign_id)
    query = select(func.count()).select_from(CampaignRecipient).where(CampaignRecipient.campaign_id == c.id)
    return int(session.execute(query.where(_condition(c, kind, hours, button))).scalar_one())


def _button_text(session: Session, campaign: Campaign, payload: Any) -> str:
    """What the button says (its payload is often a code like YES_PLEASE): the text of a reply that pressed it."""
    text = session.execute(
        select(func.max(InboundMessage.text))
        .join(CampaignRecipient, reply_join(campaign))
        .where(InboundMessage.payload == str(payload)[:256])
    ).scalar_one_or_none()
    return text or str(payload)


def _column(key: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in key).strip("_") or "value"


def _rows(session: Session, campaign: Campaign, where, keys: list[str]) -> Iterator[list[str]]:
    last = 0
    r = CampaignRecipient
    while True:
        batch = session.execute(
            select(r.id, r.address, r.variables)
            .where(r.campaign_id == campaign.id, r.id > last, where)
            .order_by(r.id)
            .limit(_CHUNK)
        ).all()
        for _id, address, values in batch:
            values = values or {}
            yield [address, *(str(values.get(k, "")) for k in keys)]
        if len(batch) < _CHUNK:
            return
        last = batch[-1][0]


def _write_file(session: Session, campaign: Campaign, where, keys: list[str], columns: list[str]) -> tuple[str, int]:
    """The frozen copy as a CSV in a private temporary file; (path, rows)."""
    fd, path = tempfile.mkstemp(suffix=".csv", prefix="hubcast-send-again-")
    rows = 0
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["phone", *columns])
        for row in _rows(session, campaign, where, keys):
            writer.writerow(row)
            rows += 1
    return path, rows


def create(
    *, session: Session, actor: User | None, campaign_id: Any, kind: Any, hours: Any = 24, button: Any = ""
) -> Campaign:
    """The new Draft (caller commits). Raises SendAgainError (nothing created) when nobody matches."""
    user = require(session, actor, perm.CAMPAIGNS_EDIT)
    perm.require(user.role, perm.CAMPAIGNS_VIEW)
    source = _campaign(session, campaign_id)
    if source.status == DRAFT:
        raise SendAgainError("This campaign was never sent.")
    kind = str(kind or "") if isinstance(kind, str) else ""
    where = _condition(source, kind, hours, button)
    keys = sorted((source.variable_mapping or {}).keys())
    columns, taken = [], {"phone"}
    for key in keys:
        name = _column(key)
        while name in taken:
            name += "_"
        taken.add(name)
        columns.append(name)
    path, rows = _write_file(session, source, where, keys, columns)
    try:
        if rows == 0:
            raise SendAgainError(f"No recipient of “{source.name}” matches “{label(kind, hours, button)}”.")
        name = (
            f"{source.name} · {label(kind, hours, _button_text(session, source, button) if kind == 'button' else '')}"
        )
        with open(path, "rb") as fh:
            stored = uploads.store_upload(
                fh, original_name=f"send-again-{source.id}.csv", purpose=drafts.UPLOAD_PURPOSE
            )
    finally:
        os.unlink(path)
    try:
        check = check_csv(stored.path)
        draft = drafts.create_draft(session=session, actor=user, name=name[: drafts.MAX_NAME])
        upload = drafts.register_derived_upload(
            session=session,
            actor=user,
            path=str(stored.path),
            original_name=stored.original_name,
            check=check,
            source=source,
        )
        draft.audience_kind, draft.audience_upload_id = "csv", upload.id
        draft.channel_id, draft.template_id = source.channel_id, source.template_id
        draft.variable_mapping = {
            key: {
                "source": "column",
                "key": column,
                "fallback": str((source.variable_mapping[key] or {}).get("fallback", "")),
            }
            for key, column in zip(keys, columns, strict=True)
        }
        draft.timezone = source.timezone
        draft.wizard_step = 2
        session.add(draft)
        session.flush()
    except CsvRefused as exc:
        uploads.discard(stored.path, drafts.UPLOAD_PURPOSE)
        raise SendAgainError(str(exc)) from None
    except BaseException:
        uploads.discard(stored.path, drafts.UPLOAD_PURPOSE)
        raise
    audit.record(
        session=session,
        actor=user,
        action="campaign.send_again",
        target_type="campaign",
        target_id=draft.id,
        detail={"from": source.id, "kind": kind, "hours": str(hours)[:8], "button": str(button)[:64], "rows": rows},
    )
    return draft
