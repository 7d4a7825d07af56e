"""From a template's components (as GET message_templates returns them) to the `components` list
of a send request.

Which variables a template has, and their keys (`header.1`, `body.first_name`, `button.0.1`, ...), is
`app.domain.template_components`; its names are re-exported here for the send path's callers.

Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from app.domain.template_components import (
    LOCATION_FIELDS,
    PLACEHOLDER,
    TemplateVariable,
    clean_parameter_text,
    component_type,
    coordinate,
    placeholders,
    template_variables,
)

__all__ = [
    "PLACEHOLDER",
    "MissingVariableError",
    "TemplateVariable",
    "build_send_components",
    "clean_parameter_text",
    "placeholders",
    "template_variables",
]


class MissingVariableError(ValueError):
    def __init__(self, keys: Sequence[str]):
        super().__init__("missing value for " + ", ".join(keys))
        self.keys = list(keys)


def _text_parameter(variable: TemplateVariable, value: str) -> dict[str, Any]:
    if variable.name.isdigit():
        return {"type": "text", "text": value}
    return {"type": "text", "parameter_name": variable.name, "text": value}


def _location_parameter(cleaned: Mapping[str, str]) -> dict[str, Any]:
    location: dict[str, Any] = {f: cleaned[f"header.{f}"] for f in LOCATION_FIELDS}
    for f in ("latitude", "longitude"):
        location[f] = coordinate(f, location[f])
    return {"type": "location", "location": location}


def build_send_components(
    components: Sequence[Mapping[str, Any]],
    values: Mapping[str, Any],
    parameter_format: str = "POSITIONAL",
    *,
    variables: Sequence[TemplateVariable] | None = None,
) -> list[dict[str, Any]]:
    """The send request's `components` for these resolved values (keys as in `template_variables`).

    `variables`: `template_variables(components, parameter_format)` computed once by a caller that sends
    the same template many times (the campaign sender: once per job, not once per message).
    Raises MissingVariableError when a variable has no non-blank value: Meta would refuse the send
    (#131008 "Parameter of type text is missing text value"), so the caller applies fallbacks first.
    """
    if variables is None:
        variables = template_variables(components, parameter_format)
    cleaned: dict[str, str] = {}
    missing: list[str] = []
    for variable in variables:
        raw = values.get(variable.key)
        text = (
            str(raw).strip()
            if variable.kind not in ("text", "location") and raw is not None
            else clean_parameter_text(raw)
        )
        # A coordinate that is not a number in range counts as missing: Meta refuses it (#100) all the same.
        if not text or (
            variable.kind == "location"
            and variable.name in ("latitude", "longitude")
            and coordinate(variable.key, text) is None
        ):
            missing.append(variable.key)
        cleaned[variable.key] = text
    if missing:
        raise MissingVariableError(missing)

    out: list[dict[str, Any]] = []
    header = [v for v in variables if v.component == "header"]
    if header:
        if header[0].kind in ("image", "video", "document"):
            params = [{"type": header[0].kind, header[0].kind: {"link": cleaned[header[0].key]}}]
        elif header[0].kind == "location":
            params = [_location_parameter(cleaned)]
        else:
            params = [_text_parameter(v, cleaned[v.key]) for v in header]
        out.append({"type": "header", "parameters": params})
    body = [v for v in variables if v.component == "body"]
    if body:
        out.append({"type": "body", "parameters": [_text_parameter(v, cleaned[v.key]) for v in body]})
    for component in components:
        if component_type(component) != "BUTTONS":
            continue
        for index, button in enumerate(component.get("buttons") or []):
            btype = str(button.get("type") or "").upper()
            mine = [v for v in variables if v.button_index == index]
            if btype == "URL" and mine:
                out.append(
                    {
                        "type": "button",
                        "sub_type": "url",
                        "index": str(index),
                        "parameters": [{"type": "text", "text": cleaned[v.key]} for v in mine],
                    }
                )
            elif btype == "COPY_CODE" and mine:
                out.append(
                    {
                        "type": "button",
                        "sub_type": "copy_code",
                        "index": str(index),
                        "parameters": [{"type": "coupon_code", "coupon_code": cleaned[mine[0].key]}],
                    }
                )
            elif btype == "OTP" and body:
                # An authentication template's button carries the same one-time code as the body's {{1}}
                # (Meta: sub_type "url", one text parameter).
                out.append(
                    {
                        "type": "button",
                        "sub_type": "url",
                        "index": str(index),
                        "parameters": [{"type": "text", "text": cleaned[body[0].key]}],
                    }
                )
            elif btype == "QUICK_REPLY" and values.get(f"button.{index}.payload"):
                out.append(
                    {
                        "type": "button",
                        "sub_type": "quick_reply",
                        "index": str(index),
                        "parameters": [{"type": "payload", "payload": str(values[f"button.{index}.payload"])}],
                    }
                )
    return out
