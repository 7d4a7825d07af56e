"""Parse Meta's webhook fields other than `messages` into flat, typed changes (pure, forgiving).

Fields read (one `AccountChange` per change; unknown fields and malformed values are skipped, as in
`app.whatsapp.webhooks`):
- message_template_status_update: {event, message_template_id, message_template_name,
  message_template_language, reason, other_info: {title, description}, disable_info}
- message_template_quality_update: {previous_quality_score, new_quality_score, message_template_id, ...}
- template_category_update: {previous_category, new_category, message_template_id, ...}
- phone_number_quality_update: {display_phone_number, event (FLAGGED, UNFLAGGED, UPGRADE, DOWNGRADE,
  ONBOARDING, ...), current_limit (TIER_1K ...), old_limit}
- account_update: {phone_number, event (ACCOUNT_RESTRICTION, ACCOUNT_VIOLATION, DISABLED_UPDATE, ...),
  restriction_info: [{restriction_type, expiration}], violation_info: {violation_type}, ban_info: {...}}
- user_preferences: {metadata: {phone_number_id}, user_preferences: [{wa_id, category, value: stop|resume,
  detail, timestamp}]}
The entry's `id` is the WhatsApp Business Account id: template and account changes belong to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

TEMPLATE_STATUS = "message_template_status_update"
TEMPLATE_QUALITY = "message_template_quality_update"
TEMPLATE_CATEGORY = "template_category_update"
PHONE_QUALITY = "phone_number_quality_update"
ACCOUNT_UPDATE = "account_update"
USER_PREFERENCES = "user_preferences"
FIELDS = (TEMPLATE_STATUS, TEMPLATE_QUALITY, TEMPLATE_CATEGORY, PHONE_QUALITY, ACCOUNT_UPDATE, USER_PREFERENCES)


@dataclass(frozen=True)
class TemplateRef:
    external_id: str
    name: str
    language: str


@dataclass(frozen=True)
class MarketingPreference:
    wa_id: str  # digits
    value: str  # stop | resume
    detail: str = ""


@dataclass(frozen=True)
class AccountChange:
    field: str
    account_id: str  # the entry id: the WhatsApp Business Account
    template: TemplateRef | None = None
    event: str = ""  # template / phone number / account event, upper case
    reason: str = ""  # why (a rejection reason, a pause's title and description, a violation type)
    new_value: str = ""  # the new quality score, category or messaging limit tier
    phone_number: str = ""  # digits of the number the change is about ("" when the whole account)
    phone_number_id: str = ""  # user_preferences: the number the person stopped or resumed
    preferences: tuple[MarketingPreference, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


def _s(value: Any, limit: int = 200) -> str:
    return "" if value is None or isinstance(value, (Mapping, list)) else str(value)[:limit]


def _digits(value: Any) -> str:
    return "".join(ch for ch in _s(value) if ch.isdigit())


def _template(value: Mapping[str, Any]) -> TemplateRef | None:
    ref = TemplateRef(
        _s(value.get("message_template_id"), 64),
        _s(value.get("message_template_name"), 512),
        _s(value.get("message_template_language"), 16),
    )
    return ref if ref.external_id or (ref.name and ref.language) else None


def _status_reason(value: Mapping[str, Any]) -> str:
    parts = []
    reason = _s(value.get("reason"))
    if reason and reason.upper() != "NONE":
        parts.append(reason)
    other = value.get("other_info") if isinstance(value.get("other_info"), Mapping) else {}
    parts += [p for p in (_s(other.get("title")), _s(other.get("description"), 300)) if p]
    return ": ".join(parts)


def _account_reason(value: Mapping[str, Any]) -> str:
    parts = []
    for item in value.get("restriction_info") or []:
        if isinstance(item, Mapping) and item.get("restriction_type"):
            parts.append(_s(item["restriction_type"]))
    for key, inner in (("violation_info", "violation_type"), ("ban_info", "waba_ban_state")):
        info = value.get(key) if isinstance(value.get(key), Mapping) else {}
        if info.get(inner):
            parts.append(_s(info[inner]))
    return ", ".join(parts)


def _preferences(value: Mapping[str, Any]) -> tuple[MarketingPreference, ...]:
    out = []
    for item in value.get("user_preferences") or []:
        if not isinstance(item, Mapping) or _s(item.get("category")) != "marketing_messages":
            continue
        choice = _s(item.get("value")).lower()
        wa_id = _digits(item.get("wa_id"))
        if wa_id and choice in ("stop", "resume"):
            out.append(MarketingPreference(wa_id, choice, _s(item.get("detail"))))
    return tuple(out)


def _change(field_name: str, account_id: str, value: Mapping[str, Any]) -> AccountChange | None:
    event = _s(value.get("event")).upper()
    if field_name in (TEMPLATE_STATUS, TEMPLATE_QUALITY, TEMPLATE_CATEGORY):
        template = _template(value)
        new_value = {
            TEMPLATE_STATUS: "",
            TEMPLATE_QUALITY: _s(value.get("new_quality_score")).upper(),
            TEMPLATE_CATEGORY: _s(value.get("new_category")).upper(),
        }[field_name]
        if (
            template is None
            or (field_name == TEMPLATE_STATUS and not event)
            or (field_name != TEMPLATE_STATUS and not new_value)
        ):
            return None
        reason = _status_reason(value) if field_name == TEMPLATE_STATUS else ""
        return AccountChange(field_name, account_id, template, event, reason, new_value, raw=value)
    if field_name == PHONE_QUALITY:
        phone = _digits(value.get("display_phone_number"))
        limit = _s(value.get("current_limit")).upper()
        return (
            AccountChange(field_name, account_id, event=event, new_value=limit, phone_number=phone, raw=value)
            if event
            else None
        )
    if field_name == ACCOUNT_UPDATE:
        phone = _digits(value.get("phone_number"))
        reason = _account_reason(value)
        return (
            AccountChange(field_name, account_id, event=event, reason=reason, phone_number=phone, raw=value)
            if event
            else None
        )
    if field_name == USER_PREFERENCES:
        metadata = value.get("metadata") if isinstance(value.get("metadata"), Mapping) else {}
        prefs = _preferences(value)
        number_id = _s(metadata.get("phone_number_id"), 64)
        return (
            AccountChange(field_name, account_id, phone_number_id=number_id, preferences=prefs, raw=value)
            if prefs
            else None
        )
    return None


def parse_account_changes(payload: Any) -> list[AccountChange]:
    """Every change of a field in FIELDS, in the order of the body."""
    out: list[AccountChange] = []
    if not isinstance(payload, Mapping) or payload.get("object") != "whatsapp_business_account":
        return out
    for entry in payload.get("entry") or []:
        if not isinstance(entry, Mapping):
            continue
        account_id = _s(entry.get("id"), 64)
        for change in entry.get("changes") or []:
            if not isinstance(change, Mapping) or change.get("field") not in FIELDS:
                continue
            value = change.get("value")
            parsed = _change(str(change["field"]), account_id, value) if isinstance(value, Mapping) else None
            if parsed is not None:
                out.append(parsed)
    return out
