"""A WhatsApp-like preview of a template message: header, body, footer and buttons in a chat bubble.

Two halves, so any page can reuse it (the Templates page, the campaign wizard):
- `preview_parts(components, values)` (pure Python, run in a State handler): Meta's template components
  plus the values of its variables (keys as in `app.whatsapp.components.template_variables`: "body.1",
  "body.first_name", "header.1") -> a JSON-able dict of display segments. A variable without a value
  shows its example (when `use_examples`), else its placeholder, marked as missing. WhatsApp's own text
  formatting (*bold*, _italic_, ~strike~, ```mono```) is applied, as the recipient would see it.
- `whatsapp_preview(preview_var)`: renders such a dict (a State var typed
  `dict[str, list[dict[str, str]]]`, default `EMPTY_PREVIEW`).
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

import reflex as rx

from app.whatsapp.components import PLACEHOLDER, template_variables

PreviewParts = dict[str, list[dict[str, str]]]
EMPTY_PREVIEW: PreviewParts = {"header": [], "media": [], "body": [], "footer": [], "buttons": []}

_MARKUP = re.compile(r"(```[\s\S]+?```|\*[^*\n]+\*|_[^_\n]+_|~[^~\n]+~)")
_STYLES = {"```": "mono", "*": "bold", "_": "italic", "~": "strike"}
_BUTTON_ICONS = {"QUICK_REPLY": "reply", "URL": "external-link", "PHONE_NUMBER": "phone", "COPY_CODE": "copy",
                 "OTP": "copy", "FLOW": "layout-list", "CATALOG": "shopping-bag", "MPM": "shopping-bag"}


def _segment(text: str, *, style: str = "", var: bool = False, missing: bool = False) -> dict[str, str]:
    return {"text": text, "style": style, "var": "yes" if var else "", "missing": "yes" if missing else ""}


def _styled_chunks(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for piece in _MARKUP.split(text):
        if not piece:
            continue
        marker = "```" if piece.startswith("```") and piece.endswith("```") and len(piece) > 6 else piece[0]
        if _MARKUP.fullmatch(piece) and marker in _STYLES:
            inner = piece[len(marker):-len(marker)]
            out.append((inner, _STYLES[marker]))
        else:
            out.append((piece, ""))
    return out


def text_segments(text: str, section: str, values: Mapping[str, Any], examples: Mapping[str, str],
                  use_examples: bool = True) -> list[dict[str, str]]:
    """One component's text as segments: literal text, and variables filled in (or marked missing)."""
    segments: list[dict[str, str]] = []
    for chunk, style in _styled_chunks(text or ""):
        position = 0
        for match in PLACEHOLDER.finditer(chunk):
            if match.start() > position:
                segments.append(_segment(chunk[position:match.start()], style=style))
            name = match.group(1)
            key = f"{section}.{name}"
            value = str(values.get(key) or "").strip()
            if not value and use_examples:
                value = examples.get(key, "")
            if value:
                segments.append(_segment(value, style=style, var=True))
            else:
                segments.append(_segment("{{%s}}" % name, style=style, var=True, missing=True))
            position = match.end()
        if position < len(chunk):
            segments.append(_segment(chunk[position:], style=style))
    return segments


def preview_parts(components: Sequence[Mapping[str, Any]] | None, values: Mapping[str, Any] | None = None, *,
                  use_examples: bool = True) -> PreviewParts:
    """Display segments for `whatsapp_preview`; never raises on odd component JSON."""
    # Reflex state containers are proxies that fail isinstance(..., Mapping): accept anything dict-like.
    components = [dict(c) for c in (components or []) if hasattr(c, "items")] if hasattr(components, "__iter__") \
        and not isinstance(components, (str, bytes)) else []
    values = dict(values) if hasattr(values, "items") else {}
    try:
        examples = {v.key: v.example for v in template_variables(components)}
    except (AttributeError, TypeError, ValueError, IndexError):
        examples = {}
    parts: PreviewParts = {"header": [], "media": [], "body": [], "footer": [], "buttons": []}
    for component in components:
        kind = str(component.get("type") or "").upper()
        if kind == "HEADER":
            fmt = str(component.get("format") or "TEXT").upper()
            if fmt == "TEXT":
                parts["header"] = text_segments(str(component.get("text") or ""), "header", values, examples,
                                                use_examples)
            else:
                parts["media"] = [{"kind": fmt.lower(), "icon": {"IMAGE": "image", "VIDEO": "video",
                                                               "DOCUMENT": "file-text"}.get(fmt, "map-pin")}]
        elif kind == "BODY":
            parts["body"] = text_segments(str(component.get("text") or ""), "body", values, examples, use_examples)
        elif kind == "FOOTER":
            parts["footer"] = [_segment(str(component.get("text") or ""))]
        elif kind == "BUTTONS":
            for button in component.get("buttons") or []:
                if hasattr(button, "get"):
                    btype = str(button.get("type") or "").upper()
                    parts["buttons"].append({"text": str(button.get("text") or btype.title()),
                                             "icon": _BUTTON_ICONS.get(btype, "reply")})
    return parts


# --- rendering --------------------------------------------------------------------------------

def _span(segment: rx.Var) -> rx.Component:
    style = segment["style"]
    return rx.text.span(
        segment["text"],
        font_weight=rx.cond(style == "bold", "700", "inherit"),
        font_style=rx.cond(style == "italic", "italic", "normal"),
        text_decoration=rx.cond(style == "strike", "line-through", "none"),
        font_family=rx.cond(style == "mono", "ui-monospace, monospace", "inherit"),
        background=rx.cond(segment["missing"] == "yes", "rgba(229, 72, 77, 0.16)",
                           rx.cond(segment["var"] == "yes", "rgba(37, 211, 102, 0.18)", "transparent")),
        border_radius=rx.cond(segment["var"] == "yes", "3px", "0"),
        padding_x=rx.cond(segment["var"] == "yes", "1px", "0"),
    )


def whatsapp_preview(preview: rx.Var, preview_id: str = "whatsapp-preview",
                     empty_text: str = "The preview appears here as you type the body.") -> rx.Component:
    """A phone-width chat showing one received template message."""
    bubble_bg = rx.color_mode_cond("#ffffff", "#202c33")
    text_color = rx.color_mode_cond("#111b21", "#e9edef")
    muted = rx.color_mode_cond("#667781", "#8696a0")
    link = rx.color_mode_cond("#027eb5", "#53bdeb")
    bubble = rx.box(
        rx.foreach(preview["media"], lambda m: rx.center(
            rx.icon(m["icon"], size=32, color=muted), height="120px", width="100%", border_radius="6px",
            background=rx.color_mode_cond("#d1d7db", "#2a3942"), margin_bottom="6px")),
        rx.cond(preview["header"].length() > 0,
                rx.text(rx.foreach(preview["header"], _span), weight="bold", size="2", margin_bottom="4px",
                        color=text_color, id=f"{preview_id}-header")),
        rx.text(rx.foreach(preview["body"], _span), size="2", white_space="pre-wrap", color=text_color,
                overflow_wrap="anywhere", id=f"{preview_id}-body"),
        rx.cond(preview["footer"].length() > 0,
                rx.text(rx.foreach(preview["footer"], _span), size="1", color=muted, margin_top="6px",
                        id=f"{preview_id}-footer")),
        rx.hstack(rx.spacer(), rx.text("12:00", size="1", color=muted), width="100%"),
        background=bubble_bg, padding="8px 10px 4px 10px", border_radius="0 8px 8px 8px",
        box_shadow="0 1px 0.5px rgba(11, 20, 26, 0.13)", width="100%",
    )
    buttons = rx.foreach(preview["buttons"], lambda b: rx.center(
        rx.hstack(rx.icon(b["icon"], size=14), rx.text(b["text"], size="2", weight="medium"), spacing="2",
                  align="center"),
        background=bubble_bg, color=link, padding="8px", border_radius="8px", width="100%",
        box_shadow="0 1px 0.5px rgba(11, 20, 26, 0.13)", class_name="wa-preview-button",
    ))
    return rx.box(
        rx.hstack(
            rx.center(rx.icon("store", size=14, color="white"), width="26px", height="26px", border_radius="full",
                      background="#25d366"),
            rx.text("Your business", size="2", weight="medium", color="white"),
            align="center", spacing="2", padding="8px 12px", background=rx.color_mode_cond("#008069", "#202c33"),
            border_radius="12px 12px 0 0",
        ),
        rx.vstack(
            rx.cond(preview["body"].length() > 0,
                    rx.vstack(bubble, buttons, spacing="1", width="100%", max_width="92%"),
                    rx.center(rx.text(empty_text, size="2", color=muted),
                              width="100%", padding="24px")),
            padding="14px 12px 18px 12px", spacing="1", min_height="200px", width="100%",
            background=rx.color_mode_cond("#efeae2", "#0b141a"), border_radius="0 0 12px 12px",
        ),
        width="100%", max_width="360px", border=f"1px solid {rx.color('gray', 5)}", border_radius="12px",
        id=preview_id,
    )
