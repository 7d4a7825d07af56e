"""From a template's components (as GET message_templates returns them) to the `components` list
of a send request, and the variables a campaign has to fill.

Variable keys follow WhatsApp's own numbering, so `Campaign.variable_mapping` reads naturally:
`header.1`, `body.1` .. `body.n` (positional), `body.first_name` (named), `button.0.1` (the dynamic
suffix of the URL button at index 0), `button.1.coupon_code` (a copy-code button), `header.image`
(a media header's link). Quick-reply buttons need no value; `button.<i>.payload` may set the payload
that comes back when the person taps it.

Pure functions, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
MEDIA_FORMATS = ("IMAGE", "VIDEO", "DOCUMENT")
_NOT_ALLOWED = re.compile(r"[\r\n\t]+")
_LONG_SPACES = re.compile(r" {5,}")


@dataclass(frozen=True)
class TemplateVariable:
    key: str  # "body.1", "body.first_name", "header.1", "button.0.1", "header.image", ...
    component: str  # header | body | button
    name: str  # "1", "first_name", "image", "coupon_code"
    kind: str = "text"  # text | image | video | document | coupon_code
    example: str = ""
    button_index: int | None = None


class MissingVariableError(ValueError):
    def __init__(self, keys: Sequence[str]):
        super().__init__("missing value for " + ", ".join(keys))
        self.keys = list(keys)


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


def _type(component: Mapping[str, Any]) -> str:
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


def template_variables(components: Sequence[Mapping[str, Any]],
                       parameter_format: str = "POSITIONAL") -> list[TemplateVariable]:
    """Every value a send of this template needs, in the order the send request carries them."""
    del parameter_format  # the placeholders themselves say positional or named
    out: list[TemplateVariable] = []
    for component in components:
        kind = _type(component)
        if kind == "HEADER":
            fmt = str(component.get("format") or "TEXT").upper()
            if fmt in MEDIA_FORMATS:
                handle = ((component.get("example") or {}).get("header_handle") or [""])[0]
                out.append(TemplateVariable(f"header.{fmt.lower()}", "header", fmt.lower(), fmt.lower(), str(handle)))
            elif fmt == "TEXT":
                examples = _examples(component, "header")
                out += [TemplateVariable(f"header.{n}", "header", n, example=examples.get(n, ""))
                        for n in placeholders(component.get("text"))]
        elif kind == "BODY":
            examples = _examples(component, "body")
            out += [TemplateVariable(f"body.{n}", "body", n, example=examples.get(n, ""))
                    for n in placeholders(component.get("text"))]
        elif kind == "BUTTONS":
            for index, button in enumerate(component.get("buttons") or []):
                btype = str(button.get("type") or "").upper()
                if btype == "URL":
                    example = (button.get("example") or [""])[0] if isinstance(button.get("example"), list) else ""
                    out += [TemplateVariable(f"button.{index}.{n}", "button", n, example=str(example), button_index=index)
                            for n in placeholders(button.get("url"))]
                elif btype == "COPY_CODE":
                    out.append(TemplateVariable(f"button.{index}.coupon_code", "button", "coupon_code", "coupon_code",
                                                str(button.get("example") or ""), button_index=index))
    return out


def _text_parameter(variable: TemplateVariable, value: str) -> dict[str, Any]:
    if variable.name.isdigit():
        return {"type": "text", "text": value}
    return {"type": "text", "parameter_name": variable.name, "text": value}


def build_send_components(components: Sequence[Mapping[str, Any]], values: Mapping[str, Any],
                          parameter_format: str = "POSITIONAL") -> list[dict[str, Any]]:
    """The send request's `components` for these resolved values (keys as in `template_variables`).

    Raises MissingVariableError when a variable has no non-blank value: Meta would refuse the send
    (#131008 "Parameter of type text is missing text value"), so the caller applies fallbacks first.
    """
    variables = template_variables(components, parameter_format)
    cleaned: dict[str, str] = {}
    missing: list[str] = []
    for variable in variables:
        raw = values.get(variable.key)
        text = str(raw).strip() if variable.kind != "text" and raw is not None else clean_parameter_text(raw)
        if not text:
            missing.append(variable.key)
        cleaned[variable.key] = text
    if missing:
        raise MissingVariableError(missing)

    out: list[dict[str, Any]] = []
    header = [v for v in variables if v.component == "header"]
    if header:
        if header[0].kind in ("image", "video", "document"):
            params = [{"type": header[0].kind, header[0].kind: {"link": cleaned[header[0].key]}}]
        else:
            params = [_text_parameter(v, cleaned[v.key]) for v in header]
        out.append({"type": "header", "parameters": params})
    body = [v for v in variables if v.component == "body"]
    if body:
        out.append({"type": "body", "parameters": [_text_parameter(v, cleaned[v.key]) for v in body]})
    for component in components:
        if _type(component) != "BUTTONS":
            continue
        for index, button in enumerate(component.get("buttons") or []):
            btype = str(button.get("type") or "").upper()
            mine = [v for v in variables if v.button_index == index]
            if btype == "URL" and mine:
                out.append({"type": "button", "sub_type": "url", "index": str(index),
                            "parameters": [{"type": "text", "text": cleaned[v.key]} for v in mine]})
            elif btype == "COPY_CODE" and mine:
                out.append({"type": "button", "sub_type": "copy_code", "index": str(index),
                            "parameters": [{"type": "coupon_code", "coupon_code": cleaned[mine[0].key]}]})
            elif btype == "QUICK_REPLY" and values.get(f"button.{index}.payload"):
                out.append({"type": "button", "sub_type": "quick_reply", "index": str(index),
                            "parameters": [{"type": "payload", "payload": str(values[f"button.{index}.payload"])}]})
    return out
