"""A recipient's template parameter values, from the campaign's variable mapping (pure, no I/O).

`Campaign.variable_mapping` maps each variable key of `app.whatsapp.components.template_variables`
("body.1", "body.first_name", "header.1", "button.0.1", ...) to where its value comes from:
    {"source": "field",  "key": "first_name", "fallback": "Friend"}   a contact field or custom field
    {"source": "column", "key": "city",       "fallback": ""}         a column of the CSV audience
    {"source": "text",   "value": "SPRING30"}                          the same text for everyone
A value that is blank after cleaning uses the fallback; blank with no fallback means the recipient
cannot be sent (Meta would refuse an empty parameter, #131008), so they are `skipped` with a title
saying which placeholder had no value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.domain.template_components import clean_parameter_text, coordinate

# The one list of built-in contact fields. CONTACT_TEXT_FIELDS are the plain text columns of `contacts`
# (what an import or the contact form fills); a variable may also take the phone (the recipient's address).
# Everything else that names contact fields (the contact form, the audience summary, the recipients reader,
# the design preview) derives from these two.
CONTACT_TEXT_FIELDS: tuple[str, ...] = ("first_name", "last_name", "email", "country", "city", "language")
CONTACT_FIELDS: tuple[str, ...] = (*CONTACT_TEXT_FIELDS, "phone")
SOURCES = ("field", "column", "text")


@dataclass(frozen=True)
class Resolution:
    values: dict[str, str] = field(default_factory=dict)
    missing: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.missing

    @property
    def error_title(self) -> str:
        return missing_title(self.missing) if self.missing else ""


_LOCATION_LABELS = {
    # Short: the wizard shows these as badges beside the inputs (a coordinate must be a number in range).
    "latitude": "the location's latitude",
    "longitude": "the location's longitude",
    "name": "the location's name",
    "address": "the location's address",
}


def placeholder_label(key: str) -> str:
    """'body.1' -> '{{1}}', 'header.1' -> '{{1}} in the header', 'button.0.1' -> '{{1}} in button 1'."""
    parts = key.split(".")
    if len(parts) >= 2 and parts[0] == "body":
        return "{{" + ".".join(parts[1:]) + "}}"
    if len(parts) == 2 and parts[0] == "header" and parts[1] in _LOCATION_LABELS:
        return _LOCATION_LABELS[parts[1]]
    if len(parts) == 2 and parts[0] == "header":
        return (
            "{{" + parts[1] + "}} in the header"
            if parts[1] not in ("image", "video", "document")
            else f"the header {parts[1]}"
        )
    if len(parts) == 3 and parts[0] == "button" and parts[1].isdigit():
        return "{{" + parts[2] + "}} in button " + str(int(parts[1]) + 1)
    return "{{" + key + "}}"


def missing_title(keys: Iterable[str]) -> str:
    return "Missing value for " + ", ".join(placeholder_label(k) for k in keys)


def _lookup(mapping: Mapping[str, Any] | None, key: str) -> Any:
    if not mapping or not key:
        return None
    if key in mapping:
        return mapping[key]
    lowered = key.lower()
    for k, v in mapping.items():  # CSV headers are typed by people: "First Name" vs "first name"
        if str(k).strip().lower() == lowered:
            return v
    return None


def contact_value(contact: Mapping[str, Any] | None, key: str) -> Any:
    """A contact field ('first_name') or custom field ('custom.plan', 'custom:plan' or just 'plan')."""
    if contact is None:
        return None
    for prefix in ("custom.", "custom:", "custom_fields."):
        if key.startswith(prefix):
            return _lookup(contact.get("custom_fields") or {}, key[len(prefix) :])
    if key in CONTACT_FIELDS:
        return contact.get(key)
    return _lookup(contact.get("custom_fields") or {}, key)


def source_value(spec: Mapping[str, Any], contact: Mapping[str, Any] | None, row: Mapping[str, Any] | None) -> Any:
    source = str(spec.get("source") or "").lower()
    key = str(spec.get("key") or "")
    if source == "text":
        return spec.get("value", spec.get("text", key))
    if source == "column":
        return _lookup(row, key)
    if source == "field":
        value = contact_value(contact, key)
        # A CSV audience has no contact record; a column of the same name is the natural reading.
        return value if value not in (None, "") or contact is not None else _lookup(row, key)
    return None


def _usable(key: str, text: str) -> str:
    """`text`, or "" when it cannot be this key's value: a location coordinate must be a number in range."""
    if key in ("header.latitude", "header.longitude") and text:
        return text if coordinate(key, text) is not None else ""
    return text


def resolve(
    keys: Iterable[str],
    mapping: Mapping[str, Any],
    *,
    contact: Mapping[str, Any] | None = None,
    row: Mapping[str, Any] | None = None,
) -> Resolution:
    """Values for every key (in order), or the keys that have none."""
    values: dict[str, str] = {}
    missing: list[str] = []
    for key in keys:
        spec = mapping.get(key) if isinstance(mapping, Mapping) else None
        spec = spec if isinstance(spec, Mapping) else {}
        text = _usable(key, clean_parameter_text(source_value(spec, contact, row)))
        if not text:
            text = _usable(key, clean_parameter_text(spec.get("fallback")))
        if text:
            values[key] = text
        else:
            missing.append(key)
    return Resolution(values=values, missing=tuple(missing))


def unmapped_keys(keys: Iterable[str], mapping: Mapping[str, Any]) -> list[str]:
    """Keys the campaign never said how to fill (checked before a campaign may start)."""
    out = []
    for key in keys:
        spec = mapping.get(key) if isinstance(mapping, Mapping) else None
        if not isinstance(spec, Mapping) or str(spec.get("source") or "").lower() not in SOURCES:
            out.append(key)
            continue
        text = spec.get("value", spec.get("text", spec.get("key")))
        if (
            spec.get("source") == "text"
            and not clean_parameter_text(text)
            and not clean_parameter_text(spec.get("fallback"))
        ):
            out.append(key)
    return out
