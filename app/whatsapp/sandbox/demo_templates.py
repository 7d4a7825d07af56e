"""The demo templates: the Sandbox account's own templates, and the ones `hubcast seed-demo` stores.

Pure data, one definition for both: the Sandbox catalogue (`catalog.demo_templates`) serves them and
the demo seed (`app.services.demo_seed`) stores them for the Sandbox channel, with the same names,
languages, components and ids, so a demo campaign validates exactly as it would at Meta. Component
JSON is exactly as GET /{waba-id}/message_templates returns it, so the composer and the send path are
exercised on the same shapes as with a real account.
"""

from __future__ import annotations

import copy
from typing import Any

_FIRST_ID = 1_020_304_050_600_000


def _template(
    name: str,
    language: str,
    category: str,
    components: list[dict[str, Any]],
    *,
    ext: int,
    status: str = "APPROVED",
    parameter_format: str = "POSITIONAL",
) -> dict[str, Any]:
    return {
        "id": str(_FIRST_ID + ext),
        "name": name,
        "language": language,
        "status": status,
        "category": category,
        "parameter_format": parameter_format,
        "components": components,
    }


_ORDER_EN = [
    {
        "type": "BODY",
        "text": "Hi {{1}}, your order {{2}} has shipped and should arrive by {{3}}. "
        "Track it any time from your account.",
        "example": {"body_text": [["Maria", "#48213", "Friday, May 16"]]},
    },
    {"type": "FOOTER", "text": "Hubcast Store"},
]
_ORDER_FR = [
    {
        "type": "BODY",
        "text": "Bonjour {{1}}, votre commande {{2}} a été expédiée et devrait arriver d'ici {{3}}. "
        "Suivez-la à tout moment depuis votre compte.",
        "example": {"body_text": [["Camille", "#48213", "vendredi 16 mai"]]},
    },
    {"type": "FOOTER", "text": "Hubcast Store"},
]

_DEMO_TEMPLATES: tuple[dict[str, Any], ...] = (
    _template(
        "spring_sale",
        "en_US",
        "MARKETING",
        [
            {"type": "HEADER", "format": "TEXT", "text": "Spring Sale: {{1}} off", "example": {"header_text": ["25%"]}},
            {
                "type": "BODY",
                "text": "Hi {{1}}, our Spring Sale is on! Use code {{2}} at checkout to save on "
                "everything until {{3}}.",
                "example": {"body_text": [["Maria", "SPRING25", "March 31"]]},
            },
            {"type": "FOOTER", "text": "Reply STOP to opt out"},
        ],
        ext=1,
    ),
    _template("order_update", "en_US", "UTILITY", _ORDER_EN, ext=2),
    _template("order_update", "fr", "UTILITY", _ORDER_FR, ext=3),
    _template(
        "event_invite",
        "en_US",
        "MARKETING",
        [
            {"type": "HEADER", "format": "TEXT", "text": "You're invited"},
            {
                "type": "BODY",
                "text": "Hi {{first_name}}, join us for our spring launch evening on {{event_date}}. "
                "Drinks, previews and a gift for every guest.",
                "example": {
                    "body_text_named_params": [
                        {"param_name": "first_name", "example": "Maria"},
                        {"param_name": "event_date", "example": "April 12"},
                    ]
                },
            },
            {"type": "FOOTER", "text": "Reply STOP to opt out"},
            {
                "type": "BUTTONS",
                "buttons": [
                    {"type": "QUICK_REPLY", "text": "Count me in"},
                    {"type": "QUICK_REPLY", "text": "Not interested"},
                ],
            },
        ],
        parameter_format="NAMED",
        ext=4,
    ),
    # Not sendable: present so the templates page shows every review state.
    _template(
        "summer_preview",
        "en_US",
        "MARKETING",
        [
            {
                "type": "BODY",
                "text": "Hi {{1}}, get a first look at our summer collection.",
                "example": {"body_text": [["Maria"]]},
            },
        ],
        status="PENDING",
        ext=5,
    ),
    _template(
        "flash_deal_90",
        "en_US",
        "MARKETING",
        [
            {
                "type": "BODY",
                "text": "LAST CHANCE!!! 90% off, click now {{1}}",
                "example": {"body_text": [["https://example.com/deal"]]},
            },
        ],
        status="REJECTED",
        ext=6,
    ),
)


def demo_templates() -> list[dict[str, Any]]:
    """The demo templates as GET message_templates returns them (fresh copies: callers may change them)."""
    return copy.deepcopy(list(_DEMO_TEMPLATES))
