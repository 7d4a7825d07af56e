"""The WhatsApp-like preview of a template message: markup, variables filled in or marked missing, odd JSON."""

from __future__ import annotations

from app.domain.template_rules import TemplateDraft, build_components
from app.domain.whatsapp_markup import EMPTY_PREVIEW, empty_preview, preview_parts, styled_chunks

GOOD = TemplateDraft(
    name="spring_sale_2025",
    language="en_US",
    category="MARKETING",
    header="Spring sale: {{1}} off",
    body="Hi {{1}}, use code {{2}} before {{3}}. See you!",
    footer="Reply STOP to opt out",
    buttons=("Yes please", "Stop promotions"),
    examples={"header.1": "25%", "body.1": "Maria", "body.2": "SPRING25", "body.3": "March 31"},
)


def _text(segments) -> str:
    return "".join(s["text"] for s in segments)


def test_preview_fills_values_falls_back_to_examples_and_marks_missing():
    components = build_components(GOOD)
    parts = preview_parts(components, {"body.1": "Ana"})
    assert _text(parts["header"]) == "Spring sale: 25% off"
    assert _text(parts["body"]) == "Hi Ana, use code SPRING25 before March 31. See you!"
    assert [b["text"] for b in parts["buttons"]] == ["Yes please", "Stop promotions"]
    assert _text(parts["footer"]) == "Reply STOP to opt out"
    bare = preview_parts(components, {"body.1": "Ana"}, use_examples=False)
    assert _text(bare["body"]) == "Hi Ana, use code {{2}} before {{3}}. See you!"
    assert [s["text"] for s in bare["body"] if s["missing"] == "yes"] == ["{{2}}", "{{3}}"]
    assert [s["text"] for s in bare["body"] if s["var"] == "yes"] == ["Ana", "{{2}}", "{{3}}"]


def test_preview_applies_whatsapp_formatting_and_survives_odd_json():
    parts = preview_parts([{"type": "BODY", "text": "Hi *{{1}}*, _soon_ ~old~ ```code```"}], {"body.1": "Ana"})
    styles = [(s["text"], s["style"]) for s in parts["body"]]
    assert ("Ana", "bold") in styles and ("soon", "italic") in styles and ("old", "strike") in styles
    assert ("code", "mono") in styles
    assert preview_parts(
        [None, "x", {"type": "BUTTONS", "buttons": [None, {"type": "URL", "text": "Open"}]}],  # type: ignore[list-item]
        None,
    )["buttons"] == [{"text": "Open", "icon": "external-link"}]
    media = preview_parts([{"type": "HEADER", "format": "IMAGE"}, {"type": "BODY", "text": "x"}])
    assert media["media"] == [{"kind": "image", "icon": "image"}] and media["header"] == []


def test_markup_pieces_keep_their_order_and_unclosed_markers_stay_text():
    assert styled_chunks("a *b* _c_ ~d~ ```e f``` g") == [
        ("a ", ""),
        ("b", "bold"),
        (" ", ""),
        ("c", "italic"),
        (" ", ""),
        ("d", "strike"),
        (" ", ""),
        ("e f", "mono"),
        (" g", ""),
    ]
    assert styled_chunks("5 * 3 = 15, snake_case") == [("5 * 3 = 15, snake_case", "")]
    assert styled_chunks("*two\nlines*") == [("*two\nlines*", "")]  # WhatsApp styles within one line
    assert styled_chunks("") == []


def test_an_empty_preview_is_a_fresh_copy():
    parts = empty_preview()
    parts["body"].append({"text": "x"})
    assert EMPTY_PREVIEW["body"] == [] and preview_parts(None) == EMPTY_PREVIEW
