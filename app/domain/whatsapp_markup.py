"""A template message as the recipient's phone shows it: WhatsApp's text markup and the filled-in variables.

Pure functions, no I/O. `preview_parts(components, values)` turns Meta's template components plus the
values of its variables (keys as in `app.domain.template_components.template_variables`: "body.1",
"body.first_name", "header.1") into a JSON-able dict of display segments, which
`components.whatsapp_preview.whatsapp_preview` renders in a chat bubble. A variable without a value shows
its example (when `use_examples`), else its placeholder, marked as missing. WhatsApp's own formatting
(*bold*, _italic_, ~strike~, ```mono```) is parsed by `styled_chunks`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from app.domain.template_components import PLACEHOLDER, template_variables

PreviewParts = dict[str, list[dict[str, str]]]
EMPTY_PREVIEW: PreviewParts = {"header": [], "media": [], "body": [], "footer": [], "buttons": []}

_MARKUP = re.compile(r"(```[\s\S]+?```|\*[^*\n]+\*|_[^_\n]+_|~[^~\n]+~)")
_STYLES = {"```": "mono", "*": "bold", "_": "italic", "~": "strike"}
_BUTTON_ICONS = {
    "QUICK_REPLY": "reply",
    "URL": "external-link",
    "PHONE_NUMBER": "phone",
    "COPY_CODE": "copy",
    "OTP": "copy",
    "FLOW": "layout-list",
    "CATALOG": "shopping-bag",
    "MPM": "shopping-bag",
}
_MEDIA_ICONS = {"IMAGE": "image", "VIDEO": "video", "DOCUMENT": "file-text"}


def empty_preview() -> PreviewParts:
    return {key: [] for key in EMPTY_PREVIEW}


def _segment(text: str, *, style: str = "", var: bool = False, missing: bool = False) -> dict[str, str]:
    return {"text": text, "style": style, "var": "yes" if var else "", "missing": "yes" if missing else ""}


def styled_chunks(text: str) -> list[tuple[str, str]]:
    """WhatsApp's markup: the text in pieces, each with its style ("bold", "italic", "strike", "mono" or "")."""
    out: list[tuple[str, str]] = []
    for piece in _MARKUP.split(text):
        if not piece:
            continue
        marker = "```" if piece.startswith("```") and piece.endswith("```") and len(piece) > 6 else piece[0]
        if _MARKUP.fullmatch(piece) and marker in _STYLES:
            inner = piece[len(marker) : -len(marker)]
            out.append((inner, _STYLES[marker]))
        else:
            out.append((piece, ""))
    return out


def text_segments(
    text: str, section: str, values: Mapping[str, Any], examples: Mapping[str, str], use_examples: bool = True
) -> list[dict[str, str]]:
    """One component's text as segments: literal text, and variables filled in (or marked missing)."""
    segments: list[dict[str, str]] = []
    for chunk, style in styled_chunks(text or ""):
        position = 0
        for match in PLACEHOLDER.finditer(chunk):
            if match.start() > position:
                segments.append(_segment(chunk[position : match.start()], style=style))
            name = match.group(1)
            key = f"{section}.{name}"
            value = str(values.get(key) or "").strip()
            if not value and use_examples:
                value = examples.get(key, "")
            if value:
                segments.append(_segment(value, style=style, var=True))
            else:
                segments.append(_segment(f"{{{{{name}}}}}", style=style, var=True, missing=True))
            position = match.end()
        if position < len(chunk):
            segments.append(_segment(chunk[position:], style=style))
    return segments


def preview_parts(
    components: Sequence[Mapping[str, Any]] | None,
    values: Mapping[str, Any] | None = None,
    *,
    use_examples: bool = True,
) -> PreviewParts:
    """Display segments for `whatsapp_preview`; never raises on odd component JSON."""
    # Reflex state containers are proxies that fail isinstance(..., Mapping): accept anything dict-like.
    components = (
        [dict(c) for c in (components or []) if hasattr(c, "items")]
        if hasattr(components, "__iter__") and not isinstance(components, (str, bytes))
        else []
    )
    values = dict(values) if hasattr(values, "items") else {}
    try:
        examples = {v.key: v.example for v in template_variables(components)}
    except (AttributeError, TypeError, ValueError, IndexError):
        examples = {}
    parts = empty_preview()
    for component in components:
        kind = str(component.get("type") or "").upper()
        if kind == "HEADER":
            fmt = str(component.get("format") or "TEXT").upper()
            if fmt == "TEXT":
                parts["header"] = text_segments(
                    str(component.get("text") or ""), "header", values, examples, use_examples
                )
            else:
                parts["media"] = [{"kind": fmt.lower(), "icon": _MEDIA_ICONS.get(fmt, "map-pin")}]
        elif kind == "BODY":
            parts["body"] = text_segments(str(component.get("text") or ""), "body", values, examples, use_examples)
        elif kind == "FOOTER":
            parts["footer"] = [_segment(str(component.get("text") or ""))]
        elif kind == "BUTTONS":
            for button in component.get("buttons") or []:
                if hasattr(button, "get"):
                    btype = str(button.get("type") or "").upper()
                    parts["buttons"].append(
                        {"text": str(button.get("text") or btype.title()), "icon": _BUTTON_ICONS.get(btype, "reply")}
                    )
    return parts


def profile_initials(name: str) -> str:
    """What WhatsApp shows in a business's profile circle when it has no photo: the first letters of its
    first two words ("Hubcast Sandbox" -> "HS", "acme" -> "A"); "" for a name without letters or digits."""
    words = [w for w in (name or "").split() if any(ch.isalnum() for ch in w)]
    letters = [next(ch for ch in w if ch.isalnum()) for w in words[:2]]
    return "".join(letters).upper()


def business_name(display_name: str, channel_name: str) -> str:
    """The name a preview shows for a channel: its WhatsApp display name, else the channel's own name."""
    return " ".join((display_name or "").split()) or " ".join((channel_name or "").split())
