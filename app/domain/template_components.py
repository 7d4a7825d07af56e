"""A template's components (as GET message_templates returns them): the variables a send needs and the
placeholder syntax ({{1}}, {{first_name}}), for the template rules, the variable mapping and the send.

Variable keys follow WhatsApp's own numbering, so `Campaign.variable_mapping` reads naturally:
`header.1`, `body.1` .. `body.n` (positional), `body.first_name` (named), `button.0.1` (the dynamic
suffix of the URL button at index 0), `button.1.coupon_code` (a copy-code button), `header.image`
(a media header's link), `header.latitude` / `longitude` / `name` / `address` (a LOCATION header).
An authentication template's OTP button carries the body's code ({{1}}), so it has no key of its own.
Quick-reply buttons need no value; `button.<i>.payload` may set the payload
that comes back when the person taps it.

Pure functions, no I/O. The send request built from them is `app.whatsapp.components`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
MEDIA_FORMATS = ("IMAGE", "VIDEO", "DOCUMENT")
# A LOCATION header's four values (Meta requires each), keys `header.latitude` .. `header.address`.
LOCATION_FIELDS = ("latitude", "longitude", "name", "address")
_NOT_ALLOWED = re.compile(r"[\r\n\t]+")
_LONG_SPACES = re.compile(r" {5,}")


@dataclass(frozen=True)
class TemplateVariable:
    key: str  # "body.1", "body.first_name", "header.1", "button.0.1", "header.image", ...
    component: str  # header | body | button
    name: str  # "1", "first_name", "image", "coupon_code"
    kind: str = "text"  # text | image | video | document | coupon_code | location
    example: str = ""
    button_index: int | None = None


def coordinate(key: str, text: str | None) -> float | None:
    """A LOCATION header's latitude (-90..90) or longitude (-180..180) from text ("48.85" or "48,85"), or None
    when it is not one: Meta refuses a location without numeric coordinates."""
    try:
        value = float(str(text).strip().replace(",", ".")) if text else None
    except ValueError:
        return None
    limit = 90 if key.endswith("latitude") else 180
    return value if value is not None and -limit <= value <= limit else None


def placeholders(text: str | None) -> list[str]:
    """Placeholder names in the order WhatsApp numbers them: numerically for {{1}}, by first
    appearance for named ones; each once."""
    names: list[str] = []
    for name in PLACEHOLDER.findall(text or ""):
        if name not in names:
            names.append(name)
    if names and all(n.isdigit() for n in names):
        names.sort(key=int)
    return names


def clean_parameter_text(value: Any) -> str:
    """Meta refuses parameter text with new lines, tabs or more than 4 consecutive spaces (#132018)."""
    text = _NOT_ALLOWED.sub(" ", "" if value is None else str(value))
    return _LONG_SPACES.sub(" ", text).strip()


def component_type(component: Mapping[str, Any]) -> str:
    return str(component.get("type") or "").upper()


def _examples(component: Mapping[str, Any], section: str) -> dict[str, str]:
    """Example values keyed by placeholder name, from Meta's `example` object."""
    example = component.get("example") or {}
    out: dict[str, str] = {}
    named = example.get(f"{section}_text_named_params") or []
    for item in named:
        if isinstance(item, Mapping):
            out[str(item.get("param_name"))] = str(item.get("example") or "")
    positional = example.get(f"{section}_text") or []
    if positional and isinstance(positional[0], list):  # body_text is a list of rows
        positional = positional[0]
    for i, value in enumerate(positional, start=1):
        out.setdefault(str(i), str(value))
    return out


def template_variables(
    components: Sequence[Mapping[str, Any]], parameter_format: str = "POSITIONAL"
) -> list[TemplateVariable]:
    """Every value a send of this template needs, in the order the send request carries them."""
    del parameter_format  # the placeholders themselves say positional or named
    out: list[TemplateVariable] = []
    for component in components:
        kind = component_type(component)
        if kind == "HEADER":
            fmt = str(component.get("format") or "TEXT").upper()
            if fmt in MEDIA_FORMATS:
                handle = ((component.get("example") or {}).get("header_handle") or [""])[0]
                out.append(TemplateVariable(f"header.{fmt.lower()}", "header", fmt.lower(), fmt.lower(), str(handle)))
            elif fmt == "LOCATION":
                out += [TemplateVariable(f"header.{n}", "header", n, "location") for n in LOCATION_FIELDS]
            elif fmt == "TEXT":
                examples = _examples(component, "header")
                out += [
                    TemplateVariable(f"header.{n}", "header", n, example=examples.get(n, ""))
                    for n in placeholders(component.get("text"))
                ]
        elif kind == "BODY":
            examples = _examples(component, "body")
            out += [
                TemplateVariable(f"body.{n}", "body", n, example=examples.get(n, ""))
                for n in placeholders(component.get("text"))
            ]
        elif kind == "BUTTONS":
            for index, button in enumerate(component.get("buttons") or []):
                btype = str(button.get("type") or "").upper()
                if btype == "URL":
                    example = (button.get("example") or [""])[0] if isinstance(button.get("example"), list) else ""
                    out += [
                        TemplateVariable(f"button.{index}.{n}", "button", n, example=str(example), button_index=index)
                        for n in placeholders(button.get("url"))
                    ]
                elif btype == "COPY_CODE":
                    out.append(
                        TemplateVariable(
                            f"button.{index}.coupon_code",
                            "button",
                            "coupon_code",
                            "coupon_code",
                            str(button.get("example") or ""),
                            button_index=index,
                        )
                    )
    return out
