"""The templates the Sandbox's WhatsApp account "owns", as GET message_templates returns them.

Default: the demo templates (`demo_templates.py`, which the demo seed stores too: same names, languages,
components and ids, so a demo campaign validates exactly as it would at Meta), the less common component
types (`component_templates.py`) and a generated set, large enough that a template sync has to follow
paging (3 pages at limit=25). A JSON file can replace the lot.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .component_templates import component_templates
from .demo_templates import demo_templates

_LANGUAGES = ("en_US", "fr", "de", "es", "pt_BR")
_WORDS = ("autumn", "winter", "flash", "weekend", "loyalty", "welcome", "restock", "bundle", "vip", "clearance")


def generated_templates(count: int) -> list[dict[str, Any]]:
    """Deterministic, varied templates: header and body variables, named parameters, URL and
    quick-reply buttons, several languages, and a few that are not approved."""
    out = []
    for i in range(count):
        word = _WORDS[i % len(_WORDS)]
        named = i % 4 == 3
        if named:
            body = {
                "type": "BODY",
                "text": f"Hi {{{{first_name}}}}, the {word} offer ends on {{{{end_date}}}}.",
                "example": {
                    "body_text_named_params": [
                        {"param_name": "first_name", "example": "Maria"},
                        {"param_name": "end_date", "example": "May 3"},
                    ]
                },
            }
        else:
            n = 1 + i % 3
            details = " ".join(f"detail {k}: {{{{{k}}}}}." for k in range(2, n + 1))
            text = "Hi {{1}}, " + details if n > 1 else "Hi {{1}}!"
            body = {
                "type": "BODY",
                "text": f"{text} Our {word} selection is waiting for you.",
                "example": {"body_text": [["Maria", "SAVE10", "Friday"][:n]]},
            }
        components: list[dict[str, Any]] = []
        if i % 3 == 0 and not named:
            components.append(
                {
                    "type": "HEADER",
                    "format": "TEXT",
                    "text": f"{word.title()} deal: {{{{1}}}}",
                    "example": {"header_text": ["20% off"]},
                }
            )
        components.append(body)
        components.append({"type": "FOOTER", "text": "Reply STOP to opt out"})
        if i % 5 == 1:
            components.append(
                {
                    "type": "BUTTONS",
                    "buttons": [
                        {
                            "type": "URL",
                            "text": "Open offer",
                            "url": "https://shop.example.com/offer/{{1}}",
                            "example": ["https://shop.example.com/offer/abc123"],
                        }
                    ],
                }
            )
        elif i % 5 == 2:
            components.append(
                {
                    "type": "BUTTONS",
                    "buttons": [
                        {"type": "QUICK_REPLY", "text": "Yes please"},
                        {"type": "QUICK_REPLY", "text": "Stop promotions"},
                    ],
                }
            )
        status = "APPROVED"
        if i % 10 == 9:
            status = "PENDING"
        elif i % 15 == 14:
            status = "REJECTED"
        elif i == 7:
            status = "PAUSED"
        elif i == 8:
            status = "DISABLED"
        out.append(
            {
                "id": str(3_000_000_000_000_000 + i),
                "name": f"sandbox_{word}_{i:03d}",
                "language": _LANGUAGES[i % len(_LANGUAGES)],
                "status": status,
                "category": "UTILITY" if i % 6 == 5 else "MARKETING",
                "parameter_format": "NAMED" if named else "POSITIONAL",
                "components": components,
            }
        )
    return out


def load_templates(templates_file: str = "", template_count: int = 60) -> list[dict[str, Any]]:
    if templates_file:
        data = json.loads(Path(templates_file).read_text(encoding="utf-8"))
        if not isinstance(data, list):
            raise ValueError(f"{templates_file}: expected a JSON list of template objects")
        return [dict(t, id=str(t.get("id") or 4_000_000_000_000_000 + i)) for i, t in enumerate(data)]
    return demo_templates() + component_templates() + generated_templates(template_count)


class Catalog:
    def __init__(self, templates: Iterable[dict[str, Any]]):
        self.templates = list(templates)
        self._by_key = {(t["name"], t["language"]): t for t in self.templates}
        self._names = {t["name"] for t in self.templates}
        self._before: dict[tuple[str, str], dict[str, Any]] = {}  # review fields an account webhook changed

    def will_change(self, template: dict[str, Any]) -> None:
        """Remember a template's review fields before an account webhook changes them (`restore` on reset)."""
        key = (template["name"], template["language"])
        self._before.setdefault(key, {k: template.get(k) for k in ("status", "category", "quality_score")})

    def restore(self) -> None:
        for key, fields in self._before.items():
            template = self._by_key.get(key)
            if template is not None:
                template.update({k: v for k, v in fields.items() if v is not None})
                if fields.get("quality_score") is None:
                    template.pop("quality_score", None)
        self._before.clear()

    def find(self, name: str, language: str) -> dict[str, Any] | None:
        return self._by_key.get((name, language))

    def has_name(self, name: str) -> bool:
        return name in self._names

    def add(self, template: dict[str, Any]) -> bool:
        """Register a template (Meta's create endpoint); False when (name, language) already exists."""
        key = (template["name"], template["language"])
        if key in self._by_key:
            return False
        self.templates.append(template)
        self._by_key[key] = template
        self._names.add(template["name"])
        return True
