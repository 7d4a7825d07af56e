"""A WhatsApp-like preview of a template message: header, body, footer and buttons in a chat bubble.

`whatsapp_preview(preview_var)` renders the display segments that `app.domain.whatsapp_markup.preview_parts`
computes in a State handler (a var typed `dict[str, list[dict[str, str]]]`, default `EMPTY_PREVIEW`): the
Templates page and the campaign wizard use it.
"""

from __future__ import annotations

import reflex as rx


def _span(segment: rx.Var) -> rx.Component:
    style = segment["style"]
    return rx.text.span(
        segment["text"],
        font_weight=rx.cond(style == "bold", "700", "inherit"),
        font_style=rx.cond(style == "italic", "italic", "normal"),
        text_decoration=rx.cond(style == "strike", "line-through", "none"),
        font_family=rx.cond(style == "mono", "ui-monospace, monospace", "inherit"),
        background=rx.cond(
            segment["missing"] == "yes",
            "rgba(229, 72, 77, 0.16)",
            rx.cond(segment["var"] == "yes", "rgba(37, 211, 102, 0.18)", "transparent"),
        ),
        border_radius=rx.cond(segment["var"] == "yes", "3px", "0"),
        padding_x=rx.cond(segment["var"] == "yes", "1px", "0"),
    )


def whatsapp_preview(
    preview: rx.Var,
    preview_id: str = "whatsapp-preview",
    empty_text: str = "The preview appears here as you type the body.",
    business: rx.Var | str = "",
    initials: rx.Var | str = "",
) -> rx.Component:
    """A phone-width chat showing one received template message, from `business` (the channel's WhatsApp
    display name) with its profile `initials` in the circle (a shop icon when there are none)."""
    bubble_bg = rx.color_mode_cond("#ffffff", "#202c33")
    text_color = rx.color_mode_cond("#111b21", "#e9edef")
    muted = rx.color_mode_cond("#54656f", "#8696a0")  # WhatsApp's darker gray: 5:1 on the chat background
    link = rx.color_mode_cond("#027eb5", "#53bdeb")
    bubble = rx.box(
        rx.foreach(
            preview["media"],
            lambda m: rx.center(
                rx.icon(m["icon"], size=32, color=muted),
                height="120px",
                width="100%",
                border_radius="6px",
                background=rx.color_mode_cond("#d1d7db", "#2a3942"),
                margin_bottom="6px",
            ),
        ),
        rx.cond(
            preview["header"].length() > 0,
            rx.text(
                rx.foreach(preview["header"], _span),
                weight="bold",
                size="2",
                margin_bottom="4px",
                color=text_color,
                id=f"{preview_id}-header",
            ),
        ),
        rx.text(
            rx.foreach(preview["body"], _span),
            size="2",
            white_space="pre-wrap",
            color=text_color,
            overflow_wrap="anywhere",
            id=f"{preview_id}-body",
        ),
        rx.cond(
            preview["footer"].length() > 0,
            rx.text(
                rx.foreach(preview["footer"], _span), size="1", color=muted, margin_top="6px", id=f"{preview_id}-footer"
            ),
        ),
        rx.hstack(rx.spacer(), rx.text("12:00", size="1", color=muted), width="100%"),
        background=bubble_bg,
        padding="8px 10px 4px 10px",
        border_radius="0 8px 8px 8px",
        box_shadow="0 1px 0.5px rgba(11, 20, 26, 0.13)",
        width="100%",
    )
    buttons = rx.foreach(
        preview["buttons"],
        lambda b: rx.center(
            rx.hstack(
                rx.icon(b["icon"], size=14), rx.text(b["text"], size="2", weight="medium"), spacing="2", align="center"
            ),
            background=bubble_bg,
            color=link,
            padding="8px",
            border_radius="8px",
            width="100%",
            box_shadow="0 1px 0.5px rgba(11, 20, 26, 0.13)",
            class_name="wa-preview-button",
        ),
    )
    return rx.box(
        rx.hstack(
            rx.center(
                rx.cond(
                    initials != "",
                    rx.text(initials, size="1", weight="bold", color="#008069", id=f"{preview_id}-initials"),
                    rx.icon("store", size=14, color="#008069"),
                ),
                width="26px",
                height="26px",
                border_radius="50%",
                # A white profile circle on the green header; WhatsApp's dark green initials on white: 5:1
                # (the header itself is #008069, so a green circle would not show).
                background="white",
                aria_hidden="true",
            ),
            rx.text(
                rx.cond(business != "", business, "Your business"),
                size="2",
                weight="medium",
                color="white",
                id=f"{preview_id}-business",
            ),
            align="center",
            spacing="2",
            padding="8px 12px",
            background=rx.color_mode_cond("#008069", "#202c33"),
            border_radius="12px 12px 0 0",
        ),
        rx.vstack(
            rx.cond(
                preview["body"].length() > 0,
                rx.vstack(bubble, buttons, spacing="1", width="100%", max_width="92%"),
                rx.center(rx.text(empty_text, size="2", color=muted), width="100%", padding="24px"),
            ),
            padding="14px 12px 18px 12px",
            spacing="1",
            min_height="200px",
            width="100%",
            background=rx.color_mode_cond("#efeae2", "#0b141a"),
            border_radius="0 0 12px 12px",
        ),
        width="100%",
        max_width="360px",
        border=f"1px solid {rx.color('gray', 5)}",
        border_radius="12px",
        id=preview_id,
    )
