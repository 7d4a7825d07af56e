"""Which templates Hubcast can fill, and why the others can never be sent from it (pure, no I/O).

Meta's templates carry component types Hubcast fills (text, media and LOCATION headers, body variables,
URL / copy-code / OTP buttons, quick replies, phone-number buttons) and some it cannot: a carousel's
cards each need their own media and buttons, a limited-time offer an expiry per send, catalog and
multi-product messages a product catalogue, flows a Flow's token and data. A template with any of those
would be refused by WhatsApp on every send (#131008 / #132000: required parameters missing), so it is
*unsendable*: never offered in the wizard, refused by readiness, and the reason is shown on the
Templates page. Unknown component or button types are refused the same way: guessing their parameters
would fail at Meta just as surely.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from app.domain.template_components import MEDIA_FORMATS, component_type, placeholders

HEADER_FORMATS = ("TEXT", *MEDIA_FORMATS, "LOCATION")
FILLED_BUTTONS = ("QUICK_REPLY", "URL", "PHONE_NUMBER", "COPY_CODE", "OTP")

_COMPONENT_REASONS = {
    "CAROUSEL": "a carousel (each card needs its own media, variables and buttons)",
    "LIMITED_TIME_OFFER": "a limited-time offer (each send needs the offer's expiry time)",
}
_BUTTON_REASONS = {
    "CATALOG": "a catalog button (it needs a product from your Meta catalogue)",
    "MPM": "a multi-product button (it needs sections of products from your Meta catalogue)",
    "SPM": "a single-product button (it needs a product from your Meta catalogue)",
    "FLOW": "a WhatsApp Flow button (each send needs the Flow's token and data)",
}
_HEADER_REASONS = {"PRODUCT": "a product header (it needs a product from your Meta catalogue)"}


def _button_problems(component: Mapping[str, Any], body_names: list[str]) -> list[str]:
    out: list[str] = []
    for button in component.get("buttons") or []:
        if not isinstance(button, Mapping):
            out.append("a button Hubcast cannot read")
            continue
        btype = str(button.get("type") or "").upper()
        if btype in _BUTTON_REASONS:
            out.append(_BUTTON_REASONS[btype])
        elif btype not in FILLED_BUTTONS:
            out.append(f"a {btype or 'untyped'} button, which Hubcast does not know how to fill")
        elif btype == "OTP" and not body_names:
            # The OTP button sends the body's code; without {{1}} in the body there is no code to send.
            out.append("a one-time-password button but no code variable in the body")
    return out


def unsupported_parts(components: Sequence[Any] | None) -> list[str]:
    """What in these components Hubcast cannot fill, each as a phrase ("a carousel (...)"); empty: sendable."""
    out: list[str] = []
    comps = [c for c in components or [] if isinstance(c, Mapping)]
    if len(comps) != len(components or []):
        out.append("a component Hubcast cannot read")
    body = next((c for c in comps if component_type(c) == "BODY"), {})
    body_names = placeholders(body.get("text"))
    for component in comps:
        kind = component_type(component)
        if kind == "HEADER":
            fmt = str(component.get("format") or "TEXT").upper()
            if fmt not in HEADER_FORMATS:
                out.append(_HEADER_REASONS.get(fmt, f"a {fmt} header, which Hubcast does not know how to fill"))
        elif kind == "BUTTONS":
            out += _button_problems(component, body_names)
        elif kind in _COMPONENT_REASONS:
            out.append(_COMPONENT_REASONS[kind])
        elif kind not in ("BODY", "FOOTER"):
            out.append(f"a {kind or 'untyped'} component, which Hubcast does not know how to fill")
    return list(dict.fromkeys(out))


def unsendable_reason(components: Sequence[Any] | None) -> str:
    """The sentence shown for a template Hubcast cannot send, or "" when it can fill every part."""
    parts = unsupported_parts(components)
    if not parts:
        return ""
    return (
        "Hubcast cannot send this template: it has "
        + "; ".join(parts)
        + ". WhatsApp would refuse every message without those values; send it from Meta's tools or choose "
        "another template."
    )
