"""`POST /_sandbox/account_webhook`: make the Sandbox emit one of Meta's non-message webhooks.

Body: {"field": FIELD, "value": {...}}; the Sandbox completes the value the way Meta fills it in:
- message_template_status_update / message_template_quality_update / template_category_update: name the
  template by "message_template_name" and "message_template_language"; the Sandbox adds its id and
  applies the change to its own catalogue first (a PAUSED template then answers #132015, DISABLED #132016,
  REJECTED #132001, as Meta does once it has told you); `"catalog": false` posts the webhook only, the
  catalogue unchanged (tests: the webhook alone must stop the campaign, with no send error racing it);
- user_preferences: {"wa_id": "336...", "value": "stop" | "resume"} becomes Meta's value with the metadata,
  the contact and a `user_preferences` item (category marketing_messages);
- phone_number_quality_update / account_update: passed through; `display_phone_number` / `phone_number` is
  the Sandbox's number when not given.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

from .catalog import Catalog
from .config import SandboxConfig
from .validation import ApiError, invalid

TEMPLATE_FIELDS = ("message_template_status_update", "message_template_quality_update", "template_category_update")
FIELDS = (*TEMPLATE_FIELDS, "user_preferences", "phone_number_quality_update", "account_update")
# The status a template has after each event (Meta's message_template_status_update `event`).
_STATUS_AFTER = {
    "APPROVED": "APPROVED",
    "REINSTATED": "APPROVED",
    "PAUSED": "PAUSED",
    "DISABLED": "DISABLED",
    "REJECTED": "REJECTED",
    "PENDING_DELETION": "PENDING_DELETION",
    "PENDING": "PENDING",
    "IN_APPEAL": "IN_APPEAL",
    "ARCHIVED": "ARCHIVED",
    "LIMIT_EXCEEDED": "LIMIT_EXCEEDED",
}
_QUALITY = ("GREEN", "YELLOW", "RED", "UNKNOWN")


def _digits(value: Any) -> str:
    return re.sub(r"\D", "", str(value or ""))


def _template_change(field: str, value: dict[str, Any], catalog: Catalog, apply: bool) -> dict[str, Any]:
    name, language = value.get("message_template_name"), value.get("message_template_language")
    found = catalog.find(str(name), str(language)) if name and language else None
    if found is None:
        raise invalid(f"No template {name!r} in {language!r}: name it by message_template_name and _language")
    template = found if apply else dict(found)  # a copy: the catalogue keeps its status
    if apply:
        catalog.will_change(found)  # /_sandbox/reset puts it back
    value = {"message_template_id": int(template["id"]), **value}
    if field == "message_template_status_update":
        event = str(value.get("event") or "").upper()
        if event not in _STATUS_AFTER and event != "FLAGGED":
            raise invalid(f"Unknown template event {event!r}: one of {', '.join([*_STATUS_AFTER, 'FLAGGED'])}")
        value.update(event=event, reason=value.get("reason") or "NONE")
        if event in _STATUS_AFTER:
            template["status"] = _STATUS_AFTER[event]
    elif field == "message_template_quality_update":
        score = str(value.get("new_quality_score") or "").upper()
        if score not in _QUALITY:
            raise invalid(f"new_quality_score must be one of {', '.join(_QUALITY)}")
        previous = (template.get("quality_score") or {}).get("score", "UNKNOWN")
        value.update(new_quality_score=score, previous_quality_score=value.get("previous_quality_score") or previous)
        template["quality_score"] = {"score": score, "date": int(time.time())}
    else:
        category = str(value.get("new_category") or "").upper()
        if category not in ("MARKETING", "UTILITY", "AUTHENTICATION"):
            raise invalid("new_category must be MARKETING, UTILITY or AUTHENTICATION")
        value.update(new_category=category, previous_category=value.get("previous_category") or template["category"])
        template["category"] = category
    return value


def _user_preferences(value: Mapping[str, Any], config: SandboxConfig) -> dict[str, Any]:
    wa_id = _digits(value.get("wa_id") or value.get("from"))
    choice = str(value.get("value") or "").lower()
    if not wa_id or choice not in ("stop", "resume"):
        raise invalid('Expected {"wa_id": "<phone>", "value": "stop" | "resume"}')
    detail = (
        "User requested to stop marketing messages"
        if choice == "stop"
        else "User requested to resume marketing messages"
    )
    return {
        "messaging_product": "whatsapp",
        "metadata": {
            "display_phone_number": _digits(config.display_phone_number),
            "phone_number_id": config.phone_number_id,
        },
        "contacts": [{"profile": {"name": str(value.get("name") or "Sandbox contact")}, "wa_id": wa_id}],
        "user_preferences": [
            {
                "wa_id": wa_id,
                "detail": detail,
                "category": "marketing_messages",
                "value": choice,
                "timestamp": int(time.time()),
            }
        ],
    }


def build_change(body: Any, catalog: Catalog, config: SandboxConfig) -> tuple[str, dict[str, Any]]:
    """(field, value) of the webhook to post; ApiError (#100) for a body the Sandbox cannot complete."""
    if not isinstance(body, Mapping) or body.get("field") not in FIELDS or not isinstance(body.get("value"), Mapping):
        raise invalid(f'Expected {{"field": one of {", ".join(FIELDS)}, "value": {{...}}}}')
    field, value = str(body["field"]), dict(body["value"])
    if field in TEMPLATE_FIELDS:
        return field, _template_change(field, value, catalog, body.get("catalog", True) is not False)
    if field == "user_preferences":
        return field, _user_preferences(value, config)
    if field == "phone_number_quality_update":
        value.setdefault("display_phone_number", _digits(config.display_phone_number))
    else:
        value.setdefault("phone_number", _digits(config.display_phone_number))
    if not value.get("event"):
        raise ApiError(100, f"{field}: the value needs an event")
    return field, value
