"""Rules for a WhatsApp message template written in Hubcast (for the Sandbox), as Meta applies them
when a template is submitted for review, and the component JSON Meta would store for it.

Pure functions, no I/O. A draft is checked as a whole and every problem is reported at once, so the
form can show them together; nothing is built from a draft that has errors.

Meta's rules reproduced here (WhatsApp Manager / POST message_templates):
- name: lowercase letters, digits and underscores, at most 512 characters;
- header (optional, text): at most 60 characters and at most one variable;
- body (required): at most 1024 characters; variables either all positional ({{1}}, {{2}} .. numbered
  consecutively from 1) or all named ({{first_name}}: lowercase letters, digits, underscores), matching
  the template's parameter format; the body may not start or end with a variable; every variable needs
  an example value (Meta rejects a template with variables but no examples);
- footer (optional): at most 60 characters, no variables;
- buttons: here, up to 3 quick replies of at most 25 characters each, all different.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.domain.template_components import PLACEHOLDER, placeholders

# Meta's template review states (GET message_templates `status`); only APPROVED can be sent.
APPROVED = "APPROVED"
DELETED = "DELETED"
TEMPLATE_STATUSES: tuple[str, ...] = (
    "APPROVED",
    "PENDING",
    "REJECTED",
    "PAUSED",
    "DISABLED",
    "IN_APPEAL",
    "PENDING_DELETION",
    "DELETED",
    "ARCHIVED",
    "LIMIT_EXCEEDED",
)
SENDABLE_STATUSES = frozenset({APPROVED})

CATEGORIES: tuple[str, ...] = ("MARKETING", "UTILITY", "AUTHENTICATION")
# Authentication templates have a fixed one-time-password layout Meta generates; they are not written here.
CREATABLE_CATEGORIES: tuple[str, ...] = ("MARKETING", "UTILITY")
POSITIONAL, NAMED = "POSITIONAL", "NAMED"
PARAMETER_FORMATS: tuple[str, ...] = (POSITIONAL, NAMED)

# Meta's supported template languages (code: label), in the order WhatsApp Manager lists them.
LANGUAGES: dict[str, str] = {
    "af": "Afrikaans",
    "sq": "Albanian",
    "ar": "Arabic",
    "az": "Azerbaijani",
    "bn": "Bengali",
    "bg": "Bulgarian",
    "ca": "Catalan",
    "zh_CN": "Chinese (China)",
    "zh_HK": "Chinese (Hong Kong)",
    "zh_TW": "Chinese (Taiwan)",
    "hr": "Croatian",
    "cs": "Czech",
    "da": "Danish",
    "nl": "Dutch",
    "en": "English",
    "en_GB": "English (UK)",
    "en_US": "English (US)",
    "et": "Estonian",
    "fil": "Filipino",
    "fi": "Finnish",
    "fr": "French",
    "ka": "Georgian",
    "de": "German",
    "el": "Greek",
    "gu": "Gujarati",
    "ha": "Hausa",
    "he": "Hebrew",
    "hi": "Hindi",
    "hu": "Hungarian",
    "id": "Indonesian",
    "ga": "Irish",
    "it": "Italian",
    "ja": "Japanese",
    "kn": "Kannada",
    "kk": "Kazakh",
    "rw_RW": "Kinyarwanda",
    "ko": "Korean",
    "ky_KG": "Kyrgyz",
    "lo": "Lao",
    "lv": "Latvian",
    "lt": "Lithuanian",
    "mk": "Macedonian",
    "ms": "Malay",
    "ml": "Malayalam",
    "mr": "Marathi",
    "nb": "Norwegian",
    "fa": "Persian",
    "pl": "Polish",
    "pt_BR": "Portuguese (Brazil)",
    "pt_PT": "Portuguese (Portugal)",
    "pa": "Punjabi",
    "ro": "Romanian",
    "ru": "Russian",
    "sr": "Serbian",
    "sk": "Slovak",
    "sl": "Slovenian",
    "es": "Spanish",
    "es_AR": "Spanish (Argentina)",
    "es_ES": "Spanish (Spain)",
    "es_MX": "Spanish (Mexico)",
    "sw": "Swahili",
    "sv": "Swedish",
    "ta": "Tamil",
    "te": "Telugu",
    "th": "Thai",
    "tr": "Turkish",
    "uk": "Ukrainian",
    "ur": "Urdu",
    "uz": "Uzbek",
    "vi": "Vietnamese",
    "zu": "Zulu",
}

MAX_NAME = 512
MAX_HEADER = 60
MAX_BODY = 1024
MAX_FOOTER = 60
MAX_BUTTONS = 3
MAX_BUTTON_TEXT = 25
MAX_EXAMPLE = 200

_NAME = re.compile(r"^[a-z0-9_]+$")
_NAMED_PARAM = re.compile(r"^[a-z][a-z0-9_]*$")
# Anything that looks like a variable, including malformed ones ("{{ first name }}", "{{1"), so
# a typo is reported instead of silently becoming literal text.
_BRACES = re.compile(r"\{\{|\}\}")


@dataclass(frozen=True)
class TemplateDraft:
    name: str = ""
    language: str = "en_US"
    category: str = "MARKETING"
    parameter_format: str = POSITIONAL
    header: str = ""
    body: str = ""
    footer: str = ""
    buttons: tuple[str, ...] = ()
    examples: Mapping[str, str] = field(default_factory=dict)  # "header.1", "body.1", "body.first_name"


class TemplateRuleError(ValueError):
    """The draft breaks Meta's rules; `errors` lists every problem, each a sentence for the form."""

    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = list(errors)


def _text(value: Any, limit: int = 4096) -> str:
    """Any crafted value becomes a bounded string: handlers must never raise on odd input."""
    if value is None or isinstance(value, (dict, list, tuple, set)):
        return ""
    return str(value)[:limit]


def draft_from_form(form: Mapping[str, Any] | None, examples: Mapping[str, Any] | None = None) -> TemplateDraft:
    """A draft from form fields (`button_1`..`button_3` for quick replies), whatever their types."""
    # Anything dict-like (Reflex state dicts are proxies that fail isinstance(..., Mapping)).
    form = dict(form) if hasattr(form, "items") else {}
    examples = dict(examples) if hasattr(examples, "items") else {}
    buttons = tuple(_text(form.get(f"button_{i}"), 200).strip() for i in range(1, MAX_BUTTONS + 1))
    return TemplateDraft(
        name=_text(form.get("name"), MAX_NAME + 100).strip(),
        language=_text(form.get("language"), 32).strip(),
        category=_text(form.get("category"), 32).strip().upper(),
        parameter_format=_text(form.get("parameter_format"), 32).strip().upper() or POSITIONAL,
        header=_text(form.get("header"), MAX_HEADER + 200).strip(),
        body=_text(form.get("body"), MAX_BODY + 200).strip(),
        footer=_text(form.get("footer"), MAX_FOOTER + 200).strip(),
        buttons=tuple(b for b in buttons if b),
        examples={_text(k, 100): _text(v, MAX_EXAMPLE + 100).strip() for k, v in examples.items()},
    )


def draft_variables(draft: TemplateDraft) -> list[tuple[str, str, str]]:
    """(key, component, name) of every variable the draft's header and body use, in WhatsApp's order.
    Lenient: works on a draft with errors, so the form can ask for examples while the user types."""
    out = [(f"header.{n}", "header", n) for n in placeholders(draft.header)]
    out += [(f"body.{n}", "body", n) for n in placeholders(draft.body)]
    return out


def _malformed(text: str) -> bool:
    return bool(_BRACES.search(PLACEHOLDER.sub("", text)))


def _check_names(section: str, names: list[str], fmt: str, errors: list[str]) -> None:
    positional = [n for n in names if n.isdigit()]
    named = [n for n in names if not n.isdigit()]
    if fmt == POSITIONAL and named:
        errors.append(
            f"The {section} uses named variables ({', '.join('{{' + n + '}}' for n in named)}) but the "
            "template's variable format is numbered: use {{1}}, {{2}}, ... or choose named variables."
        )
    if fmt == NAMED and positional:
        errors.append(
            f"The {section} uses numbered variables ({', '.join('{{' + n + '}}' for n in positional)}) but "
            "the template's variable format is named: use names such as {{first_name}}."
        )
    bad = [n for n in named if not _NAMED_PARAM.match(n)]
    if bad:
        errors.append(
            f"Variable names in the {section} must be lowercase letters, digits and underscores, "
            f"starting with a letter: {', '.join('{{' + n + '}}' for n in bad)}."
        )


def validate_draft(draft: TemplateDraft) -> list[str]:
    """Every rule the draft breaks, as sentences; an empty list means Meta would accept it."""
    errors: list[str] = []
    if not draft.name:
        errors.append("Enter a template name.")
    elif len(draft.name) > MAX_NAME:
        errors.append(f"The template name is too long ({len(draft.name)} characters; at most {MAX_NAME}).")
    elif not _NAME.match(draft.name):
        errors.append(
            "The template name may only contain lowercase letters, digits and underscores "
            "(for example spring_sale_2025)."
        )
    if draft.language not in LANGUAGES:
        errors.append(f"Choose a language WhatsApp supports ({draft.language!r} is not one).")
    if draft.category not in CREATABLE_CATEGORIES:
        errors.append(
            "The category must be Marketing or Utility (authentication templates use Meta's fixed "
            "one-time-password layout)."
        )
    fmt = draft.parameter_format
    if fmt not in PARAMETER_FORMATS:
        errors.append("The variable format must be numbered ({{1}}) or named ({{first_name}}).")

    header_names = placeholders(draft.header)
    if len(draft.header) > MAX_HEADER:
        errors.append(f"The header is too long ({len(draft.header)} characters; at most {MAX_HEADER}).")
    if _malformed(draft.header):
        errors.append("The header has a malformed variable: write variables as {{1}} or {{name}}.")
    if len(header_names) > 1:
        errors.append("The header may contain at most one variable.")
    _check_names("header", header_names, fmt, errors)
    if header_names and fmt == POSITIONAL and header_names != ["1"]:
        errors.append("The header's variable must be {{1}}.")

    body_names = placeholders(draft.body)
    if not draft.body:
        errors.append("Enter the message body.")
    elif len(draft.body) > MAX_BODY:
        errors.append(f"The body is too long ({len(draft.body)} characters; at most {MAX_BODY}).")
    if _malformed(draft.body):
        errors.append("The body has a malformed variable: write variables as {{1}} or {{name}}.")
    _check_names("body", body_names, fmt, errors)
    numbers = sorted(int(n) for n in body_names if n.isdigit())
    if fmt == POSITIONAL and numbers and numbers != list(range(1, len(numbers) + 1)):
        expected = ", ".join("{{" + str(i) + "}}" for i in range(1, len(numbers) + 1))
        found = ", ".join("{{" + str(i) + "}}" for i in numbers)
        errors.append(
            f"Body variables must be numbered consecutively from {{{{1}}}}: found {found}, expected {expected}."
        )
    stripped = draft.body.strip()
    if body_names and (PLACEHOLDER.match(stripped) or re.search(r"\{\{\s*[A-Za-z0-9_]+\s*\}\}$", stripped)):
        errors.append("The body may not start or end with a variable: add some text before and after it.")

    if len(draft.footer) > MAX_FOOTER:
        errors.append(f"The footer is too long ({len(draft.footer)} characters; at most {MAX_FOOTER}).")
    if _BRACES.search(draft.footer):
        errors.append("The footer may not contain variables.")

    if len(draft.buttons) > MAX_BUTTONS:
        errors.append(f"At most {MAX_BUTTONS} quick-reply buttons.")
    for text in draft.buttons:
        if len(text) > MAX_BUTTON_TEXT:
            errors.append(f'The button "{text[:40]}" is too long ({len(text)} characters; at most {MAX_BUTTON_TEXT}).')
        if _BRACES.search(text):
            errors.append("Quick-reply buttons may not contain variables.")
    if len({b.casefold() for b in draft.buttons}) != len(draft.buttons):
        errors.append("Each quick-reply button needs a different text.")

    missing = []
    for key, _component, name in draft_variables(draft):
        example = (draft.examples.get(key) or "").strip()
        if not example:
            missing.append("{{" + name + "}}" + (" in the header" if key.startswith("header.") else ""))
        elif len(example) > MAX_EXAMPLE or "{{" in example or "\n" in example:
            errors.append(
                f"The example for {{{{{name}}}}} must be one line of at most {MAX_EXAMPLE} characters "
                "without variables."
            )
    if missing:
        errors.append(
            "Give an example value for every variable (Meta requires them for review): " + ", ".join(missing) + "."
        )
    return errors


def _examples_block(section: str, names: list[str], draft: TemplateDraft, fmt: str) -> dict[str, Any]:
    values = [draft.examples[f"{section}.{n}"].strip() for n in names]
    if fmt == NAMED:
        pairs = zip(names, values, strict=True)
        return {f"{section}_text_named_params": [{"param_name": n, "example": v} for n, v in pairs]}
    # Meta's shapes: header_text is a flat list, body_text a list of one row.
    return {f"{section}_text": values if section == "header" else [values]}


def build_components(draft: TemplateDraft) -> list[dict[str, Any]]:
    """Meta's component objects for a valid draft (raises TemplateRuleError otherwise)."""
    errors = validate_draft(draft)
    if errors:
        raise TemplateRuleError(errors)
    fmt = draft.parameter_format
    components: list[dict[str, Any]] = []
    if draft.header:
        header: dict[str, Any] = {"type": "HEADER", "format": "TEXT", "text": draft.header}
        names = placeholders(draft.header)
        if names:
            header["example"] = _examples_block("header", names, draft, fmt)
        components.append(header)
    body: dict[str, Any] = {"type": "BODY", "text": draft.body}
    names = placeholders(draft.body)
    if names:
        body["example"] = _examples_block("body", names, draft, fmt)
    components.append(body)
    if draft.footer:
        components.append({"type": "FOOTER", "text": draft.footer})
    if draft.buttons:
        components.append({"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": b} for b in draft.buttons]})
    return components
