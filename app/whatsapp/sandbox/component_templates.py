"""Sandbox templates with Meta's less common component types, as GET message_templates returns them.

Two Hubcast fills (a LOCATION header; an authentication template's one-time-password button) and five it
refuses as unsendable (`app.domain.template_support`): a carousel, a limited-time offer, a catalog button,
a multi-product button and a Flow button. The Sandbox validates sends of every one of them as Meta does
(`validation.py`), so a template Hubcast could not fill cannot pass against it either.
"""

from __future__ import annotations

import copy
from typing import Any

_FIRST_ID = 1_020_304_050_700_000


def _t(name: str, category: str, components: list[dict[str, Any]], ext: int) -> dict[str, Any]:
    return {
        "id": str(_FIRST_ID + ext),
        "name": name,
        "language": "en_US",
        "status": "APPROVED",
        "category": category,
        "parameter_format": "POSITIONAL",
        "components": components,
    }


_BODY = {"type": "BODY", "text": "Hi {{1}}, this one is for you.", "example": {"body_text": [["Maria"]]}}

_COMPONENT_TEMPLATES: tuple[dict[str, Any], ...] = (
    _t(
        "store_visit",
        "MARKETING",
        [
            {"type": "HEADER", "format": "LOCATION"},
            {
                "type": "BODY",
                "text": "Hi {{1}}, our new store is open: come and see us this week.",
                "example": {"body_text": [["Maria"]]},
            },
            {"type": "FOOTER", "text": "Reply STOP to opt out"},
        ],
        1,
    ),
    _t(
        "login_code",
        "AUTHENTICATION",
        [
            {"type": "BODY", "text": "*{{1}}* is your verification code.", "add_security_recommendation": True},
            {"type": "FOOTER", "text": "This code expires in 10 minutes.", "code_expiration_minutes": 10},
            {"type": "BUTTONS", "buttons": [{"type": "OTP", "otp_type": "COPY_CODE", "text": "Copy code"}]},
        ],
        2,
    ),
    _t(
        "autumn_carousel",
        "MARKETING",
        [
            copy.deepcopy(_BODY),
            {
                "type": "CAROUSEL",
                "cards": [
                    {
                        "components": [
                            {
                                "type": "HEADER",
                                "format": "IMAGE",
                                "example": {"header_handle": ["https://x.test/a.jpg"]},
                            },
                            {"type": "BODY", "text": "Card {{1}}", "example": {"body_text": [["one"]]}},
                            {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "More"}]},
                        ]
                    }
                    for _ in range(2)
                ],
            },
        ],
        3,
    ),
    _t(
        "flash_offer",
        "MARKETING",
        [
            {"type": "LIMITED_TIME_OFFER", "limited_time_offer": {"text": "Expiring offer!", "has_expiration": True}},
            copy.deepcopy(_BODY),
            {
                "type": "BUTTONS",
                "buttons": [
                    {"type": "COPY_CODE", "example": "FLASH25"},
                    {"type": "URL", "text": "Shop", "url": "https://shop.example.com/{{1}}", "example": ["x"]},
                ],
            },
        ],
        4,
    ),
    _t(
        "catalog_picks",
        "MARKETING",
        [copy.deepcopy(_BODY), {"type": "BUTTONS", "buttons": [{"type": "CATALOG", "text": "View catalog"}]}],
        5,
    ),
    _t(
        "product_sections",
        "MARKETING",
        [
            {"type": "HEADER", "format": "TEXT", "text": "Our picks"},
            copy.deepcopy(_BODY),
            {"type": "BUTTONS", "buttons": [{"type": "MPM", "text": "View items"}]},
        ],
        6,
    ),
    _t(
        "signup_flow",
        "MARKETING",
        [
            copy.deepcopy(_BODY),
            {"type": "BUTTONS", "buttons": [{"type": "FLOW", "text": "Sign up", "flow_id": "1234567890"}]},
        ],
        7,
    ),
)


def component_templates() -> list[dict[str, Any]]:
    """Fresh copies (callers may change them)."""
    return copy.deepcopy(list(_COMPONENT_TEMPLATES))
