"""Check a send request the way the Cloud API does and answer with Meta's error codes.

Choices where Meta's behaviour is only partly documented (kept close to what the API really returns):
- malformed JSON, a missing/invalid field, an unknown component type: #100 "Invalid parameter";
- a template name or language the account does not have, or one not APPROVED (pending, rejected):
  #132001 "Template name does not exist in the translation"; PAUSED: #132015; DISABLED: #132016;
- a header/body parameter count different from the template's placeholders: #132000, with Meta's
  details wording "body: number of localizable_params (2) does not match the expected number of params (3)";
- an empty text parameter: #131008 "Required parameter is missing" / "Parameter of type text is missing
  text value" (what Meta answers; #100 is for structurally invalid requests); a named parameter
  absent, or a URL button without its parameter: #131008 as well;
- text with new lines, tabs or more than 4 consecutive spaces: #132018;
- a media header given the wrong parameter type: #132012 "Parameter format does not match";
- a LOCATION header without its location (latitude, longitude, name and address): #131008; another
  parameter type there: #132012;
- an authentication template's OTP button without its code (sub_type "url", one text parameter): #131008;
- a carousel without its cards (or another number of cards): #131008 / #132000; a limited-time offer
  without `expiration_time_ms`, a FLOW / CATALOG / MPM button without its `action` parameter: #131008.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.domain.template_components import PLACEHOLDER, placeholders, template_variables
from app.whatsapp.errors import META_ERROR_TITLES

from .catalog import Catalog

_FORBIDDEN_TEXT = re.compile(r"[\n\t]| {5,}")
_PHONE_NOISE = re.compile(r"[\s\-().]")


class ApiError(Exception):
    """An error answered in Graph's envelope: {"error": {"message", "type", "code", ...}}."""

    def __init__(
        self,
        code: int,
        details: str = "",
        *,
        http_status: int = 400,
        message: str | None = None,
        subcode: int | None = None,
        title: str | None = None,
    ):
        self.code, self.details, self.http_status, self.subcode = code, details, http_status, subcode
        self.title = title or META_ERROR_TITLES.get(code, "Unknown error")
        self.message = message or f"(#{code}) {self.title}"
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message, "type": "OAuthException", "code": self.code}
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        if self.details:
            error["error_data"] = {"messaging_product": "whatsapp", "details": self.details}
        error["fbtrace_id"] = "A" + secrets.token_urlsafe(16)
        return {"error": error}


def invalid(details: str) -> ApiError:
    return ApiError(100, details)


def missing_object(node: str, method: str) -> ApiError:
    return ApiError(
        100,
        subcode=33,
        message=(
            f"Unsupported {method} request. Object with ID '{node}' does not exist, cannot be loaded due to missing "
            "permissions, or does not support this operation."
        ),
    )


@dataclass(frozen=True)
class AcceptedSend:
    to: str  # as given
    wa_id: str  # digits only
    kind: str  # template | text
    template: Mapping[str, Any] | None
    biz_opaque_callback_data: str | None
    text: str  # what the person would read (rendered body)


def validate_send(body: Any, catalog: Catalog) -> AcceptedSend:
    if not isinstance(body, Mapping):
        raise invalid("Request body must be a JSON object")
    if body.get("messaging_product") != "whatsapp":
        raise invalid("The parameter messaging_product is required and must be 'whatsapp'.")
    if body.get("recipient_type", "individual") != "individual":
        raise invalid("The Sandbox only simulates recipient_type 'individual'.")
    to = body.get("to")
    if not isinstance(to, str) or not to.strip():
        raise invalid("The parameter to is required.")
    wa_id = _PHONE_NOISE.sub("", to).lstrip("+")
    if not wa_id.isdigit() or not 5 <= len(wa_id) <= 15:
        raise invalid(f"The parameter to ({to!r}) is not a valid phone number.")
    opaque = body.get("biz_opaque_callback_data")
    if opaque is not None and (not isinstance(opaque, str) or len(opaque) > 512):
        raise invalid("biz_opaque_callback_data must be a string of at most 512 characters.")
    kind = body.get("type", "text")
    if kind == "text":
        text = (body.get("text") or {}).get("body") if isinstance(body.get("text"), Mapping) else None
        if not isinstance(text, str) or not text.strip():
            raise invalid("The parameter text['body'] is required.")
        return AcceptedSend(to, wa_id, "text", None, opaque, text)
    if kind != "template":
        raise invalid(f"The Sandbox simulates 'template' and 'text' messages, not {kind!r}.")
    template = _find_template(body.get("template"), catalog)
    rendered = _check_components(template, body["template"].get("components"))
    return AcceptedSend(to, wa_id, "template", template, opaque, rendered)


def _find_template(spec: Any, catalog: Catalog) -> Mapping[str, Any]:
    if not isinstance(spec, Mapping):
        raise invalid("The parameter template is required.")
    name, language = spec.get("name"), spec.get("language")
    if not isinstance(name, str) or not name:
        raise invalid("The parameter template['name'] is required.")
    code = language.get("code") if isinstance(language, Mapping) else None
    if not isinstance(code, str) or not code:
        raise invalid("The parameter template['language']['code'] is required.")
    template = catalog.find(name, code)
    status = (template or {}).get("status", "")
    if template is None or status not in ("APPROVED", "PAUSED", "DISABLED"):
        raise ApiError(132001, f"template name ({name}) does not exist in {code}")
    if status == "PAUSED":
        raise ApiError(132015, f"Template {name} is paused because of low quality.")
    if status == "DISABLED":
        raise ApiError(132016, f"Template {name} has been disabled because of low quality.")
    return template


def _check_text(section: str, param: Mapping[str, Any]) -> str:
    if param.get("type") in ("currency", "date_time"):
        fallback = (param.get(param["type"]) or {}).get("fallback_value")
        if not fallback:
            raise ApiError(131008, f"{section}: Parameter of type {param['type']} is missing fallback_value")
        return str(fallback)
    if param.get("type") != "text":
        raise invalid(f"{section}: parameter type {param.get('type')!r} is not valid here")
    text = param.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ApiError(131008, "Parameter of type text is missing text value")
    if _FORBIDDEN_TEXT.search(text):
        raise ApiError(132018, "Param text cannot have new-line/tab characters or more than 4 consecutive spaces")
    return text


def _params(component: Mapping[str, Any] | None, section: str) -> list[Mapping[str, Any]]:
    if component is None:
        return []
    params = component.get("parameters", [])
    if not isinstance(params, list) or not all(isinstance(p, Mapping) for p in params):
        raise invalid(f"{section}: parameters must be a list of objects")
    return params


def _fill(section: str, text: str, params: list[Mapping[str, Any]]) -> str:
    """Check one header/body's parameters against its placeholders; return the rendered text."""
    names = placeholders(text)
    if len(params) != len(names):
        raise ApiError(
            132000,
            f"{section}: number of localizable_params ({len(params)}) does not match the "
            f"expected number of params ({len(names)})",
        )
    values: dict[str, str] = {}
    if names and not names[0].isdigit():
        given = {p.get("parameter_name"): p for p in params}
        for name in names:
            if name not in given:
                raise ApiError(131008, f"{section}: parameter {name} is missing")
            values[name] = _check_text(section, given[name])
    else:
        for name, param in zip(names, params, strict=False):
            values[name] = _check_text(section, param)
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def _check_components(template: Mapping[str, Any], given: Any) -> str:
    if given is None:
        given = []
    if not isinstance(given, list) or not all(isinstance(c, Mapping) for c in given):
        raise invalid("template['components'] must be a list of objects")
    by_type: dict[str, Mapping[str, Any]] = {}
    buttons: dict[int, Mapping[str, Any]] = {}
    for component in given:
        ctype = str(component.get("type", "")).lower()
        if ctype == "button":
            try:
                buttons[int(component.get("index"))] = component
            except (TypeError, ValueError):
                raise invalid("button: the parameter index is required") from None
        elif ctype in ("header", "body", "carousel", "limited_time_offer"):
            by_type[ctype] = component
        else:
            raise invalid(f"Unknown component type {component.get('type')!r}")
    parts = {str(c.get("type", "")).upper(): c for c in template.get("components") or []}
    rendered = []

    header = parts.get("HEADER")
    fmt = str((header or {}).get("format") or "TEXT").upper()
    if header and fmt in ("IMAGE", "VIDEO", "DOCUMENT"):
        params = _params(by_type.get("header"), "header")
        if not params:
            raise ApiError(131008, f"header: Parameter of type {fmt.lower()} is missing")
        media = params[0].get(fmt.lower())
        has_media = isinstance(media, Mapping) and bool(media.get("link") or media.get("id"))
        if params[0].get("type") != fmt.lower() or not has_media:
            received = str(params[0].get("type")).upper()
            raise ApiError(132012, f"header: Format mismatch, expected {fmt}, received {received}")
        rendered.append(f"[{fmt.lower()}]")
    elif header and fmt == "LOCATION":
        rendered.append(_check_location(_params(by_type.get("header"), "header")))
    else:
        rendered.append(_fill("header", (header or {}).get("text", ""), _params(by_type.get("header"), "header")))
    body = parts.get("BODY") or {}
    rendered.append(_fill("body", body.get("text", ""), _params(by_type.get("body"), "body")))

    template_buttons = (parts.get("BUTTONS") or {}).get("buttons") or []
    for index, component in buttons.items():
        if not 0 <= index < len(template_buttons):
            raise ApiError(131009, f"buttons: there is no button at index {index}")
        expected = str(template_buttons[index].get("type", "")).lower()
        expected = {"otp": "url"}.get(expected, expected)  # Meta: an OTP button is sent as sub_type "url"
        if str(component.get("sub_type", "")).lower() != expected:
            raise ApiError(
                131009,
                f"buttons: Button at index {index} is of type {expected.upper()}, not {component.get('sub_type')!r}",
            )
    for variable in template_variables(template.get("components") or []):
        if variable.component != "button":
            continue
        component = buttons.get(variable.button_index)  # type: ignore[arg-type]
        params = _params(component, "buttons")
        kind = "Url" if variable.kind == "text" else "CopyCode"
        if not params:
            raise ApiError(
                131008, f"buttons: Button at index {variable.button_index} of type {kind} requires a parameter"
            )
        value = params[0].get("coupon_code") if variable.kind == "coupon_code" else params[0].get("text")
        if not isinstance(value, str) or not value.strip():
            raise ApiError(131008, "Parameter of type text is missing text value")
    _check_special_buttons(template_buttons, buttons)
    _check_carousel(parts.get("CAROUSEL"), by_type.get("carousel"))
    _check_offer(parts.get("LIMITED_TIME_OFFER"), by_type.get("limited_time_offer"))
    footer = (parts.get("FOOTER") or {}).get("text")
    return "\n".join(p for p in rendered + [footer or ""] if p)


def _check_location(params: list[Mapping[str, Any]]) -> str:
    if not params:
        raise ApiError(131008, "header: Parameter of type location is missing")
    if params[0].get("type") != "location":
        raise ApiError(
            132012, f"header: Format mismatch, expected LOCATION, received {str(params[0].get('type')).upper()}"
        )
    location = params[0].get("location")
    if not isinstance(location, Mapping):
        raise ApiError(131008, "header: Parameter of type location is missing location")
    for key, limit in (("latitude", 90), ("longitude", 180)):
        value = location.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ApiError(131008, f"header: location is missing a numeric {key}")
        if not -limit <= value <= limit:
            raise invalid(f"header: location {key} must be between -{limit} and {limit}")
    for key in ("name", "address"):
        if not isinstance(location.get(key), str) or not location[key].strip():
            raise ApiError(131008, f"header: location is missing its {key}")
    return f"[location: {location['name']}, {location['address']}]"


def _check_special_buttons(template_buttons: list[Any], given: dict[int, Mapping[str, Any]]) -> None:
    """OTP, FLOW, CATALOG and MPM buttons each need their parameter on every send."""
    for index, button in enumerate(template_buttons):
        btype = str((button or {}).get("type", "")).upper()
        if btype not in ("OTP", "FLOW", "CATALOG", "MPM"):
            continue
        params = _params(given.get(index), "buttons")
        kind = btype.title() if btype != "OTP" else "Otp"
        if not params:
            raise ApiError(131008, f"buttons: Button at index {index} of type {kind} requires a parameter")
        if btype == "OTP":
            _check_text("buttons", params[0])
            continue
        action = params[0].get("action") if params[0].get("type") == "action" else None
        needed = {"FLOW": "flow_token", "CATALOG": "thumbnail_product_retailer_id", "MPM": "sections"}[btype]
        if not isinstance(action, Mapping) or not action.get(needed):
            raise ApiError(131008, f"buttons: Button at index {index} of type {kind} requires action.{needed}")


def _check_carousel(template_part: Mapping[str, Any] | None, given: Mapping[str, Any] | None) -> None:
    if template_part is None:
        if given is not None:
            raise invalid("carousel: the template has no carousel")
        return
    expected = len(template_part.get("cards") or [])
    cards = (given or {}).get("cards")
    if not isinstance(cards, list) or not cards:
        raise ApiError(131008, "carousel: Required parameter is missing: cards")
    if len(cards) != expected:
        raise ApiError(
            132000, f"carousel: number of cards ({len(cards)}) does not match the expected number of cards ({expected})"
        )
    for i, card in enumerate(cards):
        if not isinstance(card, Mapping) or not isinstance(card.get("components"), list) or not card["components"]:
            raise ApiError(131008, f"carousel: card {i} is missing its components")


def _check_offer(template_part: Mapping[str, Any] | None, given: Mapping[str, Any] | None) -> None:
    if template_part is None:
        if given is not None:
            raise invalid("limited_time_offer: the template has no limited-time offer")
        return
    params = _params(given, "limited_time_offer")
    offer = params[0].get("limited_time_offer") if params else None
    expires = offer.get("expiration_time_ms") if isinstance(offer, Mapping) else None
    if isinstance(expires, bool) or not isinstance(expires, int):
        raise ApiError(131008, "limited_time_offer: Required parameter is missing: expiration_time_ms")
