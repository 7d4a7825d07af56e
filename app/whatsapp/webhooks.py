"""Parse a WhatsApp webhook body (`WebhookPayload` in Meta's OpenAPI) into flat, typed events.

Pure and forgiving: an unknown field, change type or malformed item is skipped, never fatal, because
Meta adds fields over time and one odd item must not lose the rest of a batch. Check the signature
(`app.whatsapp.signature.verify`) on the raw bytes before calling this.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from app.whatsapp.errors import WhatsAppError, parse_error_object


@dataclass(frozen=True)
class StatusUpdate:
    message_id: str  # the wamid the send returned
    status: str  # sent | delivered | read | failed (Meta may add others; kept verbatim)
    timestamp: datetime | None
    recipient_id: str  # the recipient's WhatsApp id (digits)
    phone_number_id: str
    biz_opaque_callback_data: str | None = None  # what we passed at send: our recipient row id
    errors: tuple[WhatsAppError, ...] = ()
    pricing_category: str = ""
    conversation_id: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class InboundMessage:
    message_id: str
    from_wa_id: str  # digits, no "+"
    timestamp: datetime | None
    kind: str  # text | button | interactive | image | ...
    text: str = ""  # body for text; the button's label for button/interactive replies
    payload: str = ""  # quick-reply payload or interactive reply id
    context_message_id: str | None = None  # the message this replies to (e.g. our campaign wamid)
    profile_name: str = ""
    phone_number_id: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass
class WebhookEvents:
    statuses: list[StatusUpdate] = field(default_factory=list)
    messages: list[InboundMessage] = field(default_factory=list)


def _ts(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _status(item: Mapping[str, Any], phone_number_id: str) -> StatusUpdate | None:
    if not item.get("id") or not item.get("status"):
        return None
    errors = tuple(parse_error_object(e) for e in item.get("errors") or [] if isinstance(e, Mapping))
    pricing = item.get("pricing") if isinstance(item.get("pricing"), Mapping) else {}
    conversation = item.get("conversation") if isinstance(item.get("conversation"), Mapping) else {}
    opaque = item.get("biz_opaque_callback_data")
    return StatusUpdate(
        message_id=str(item["id"]),
        status=str(item["status"]),
        timestamp=_ts(item.get("timestamp")),
        recipient_id=str(item.get("recipient_id") or ""),
        phone_number_id=phone_number_id,
        biz_opaque_callback_data=None if opaque is None else str(opaque),
        errors=errors,
        pricing_category=str(pricing.get("category") or ""),
        conversation_id=str(conversation.get("id") or ""),
        raw=item,
    )


def _message(item: Mapping[str, Any], phone_number_id: str, names: dict[str, str]) -> InboundMessage | None:
    if not item.get("id") or not item.get("from"):
        return None
    kind = str(item.get("type") or "")
    text, payload = "", ""
    if kind == "text":
        text = str((item.get("text") or {}).get("body") or "")
    elif kind == "button":
        text = str((item.get("button") or {}).get("text") or "")
        payload = str((item.get("button") or {}).get("payload") or "")
    elif kind == "interactive":
        interactive = item.get("interactive") or {}
        reply = interactive.get("button_reply") or interactive.get("list_reply") or {}
        text, payload = str(reply.get("title") or ""), str(reply.get("id") or "")
    context = item.get("context") if isinstance(item.get("context"), Mapping) else {}
    sender = str(item["from"])
    return InboundMessage(
        message_id=str(item["id"]),
        from_wa_id=sender,
        timestamp=_ts(item.get("timestamp")),
        kind=kind,
        text=text,
        payload=payload,
        context_message_id=context.get("id"),
        profile_name=names.get(sender, ""),
        phone_number_id=phone_number_id,
        raw=item,
    )


# --- shape check (issue 13 item 14) -------------------------------------------------------------------

MAX_DEPTH = 24  # Meta's payloads nest ~8 deep; far deeper is an attack on whoever walks it later
_SCALAR = (str, int, float)
_STATUS_SCALARS = ("id", "status", "timestamp", "recipient_id", "biz_opaque_callback_data")


class MalformedWebhook(ValueError):
    """A signed body that is not a WhatsApp webhook we can read; the message says what is wrong."""


_LEAF = (str, int, float, type(None))  # what json.loads returns besides dicts and lists (bool is an int)


def _depth_ok(payload: Any) -> bool:
    stack = [(payload, 1)]
    while stack:  # iterative: a recursive walk would itself be the stack overflow it guards against
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return False
        if isinstance(node, Mapping):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        # Only containers go on the stack (a 100-status body has ~1,500 scalars); a non-empty container at
        # the limit has children one level deeper, which the walk above would refuse when popping them.
        if children and depth >= MAX_DEPTH:
            return False
        stack.extend((v, depth + 1) for v in children if not isinstance(v, _LEAF))
    return True


def _expect(value: Any, kind: type | tuple, where: str, *, optional: bool = True) -> None:
    if value is None and optional:
        return
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        names = "/".join(t.__name__ for t in (kind if isinstance(kind, tuple) else (kind,)))
        raise MalformedWebhook(f"{where} must be {names}, not {type(value).__name__}")


def check_shape(payload: Any) -> None:
    """MalformedWebhook unless every part this module reads has the type Meta's schema gives it.

    Unknown fields and change types stay allowed (Meta adds them over time); a known field of the wrong
    type, or nesting deeper than MAX_DEPTH, makes the whole body malformed: it is answered 400 and kept
    as rejected instead of being half-applied or crashing the route."""
    _expect(payload, Mapping, "the body", optional=False)
    if not _depth_ok(payload):
        raise MalformedWebhook(f"the body nests deeper than {MAX_DEPTH} levels")
    _expect(payload.get("object"), str, "object")
    _expect(payload.get("entry"), list, "entry")
    for entry in payload.get("entry") or []:
        _expect(entry, Mapping, "an entry", optional=False)
        _expect(entry.get("changes"), list, "entry.changes")
        for change in entry.get("changes") or []:
            _expect(change, Mapping, "a change", optional=False)
            _expect(change.get("field"), str, "change.field")
            _expect(change.get("value"), Mapping, "change.value")
            if change.get("field") == "messages" and isinstance(change.get("value"), Mapping):
                _check_value(change["value"])


def _check_value(value: Mapping[str, Any]) -> None:
    _expect(value.get("metadata"), Mapping, "value.metadata")
    _expect((value.get("metadata") or {}).get("phone_number_id"), _SCALAR, "metadata.phone_number_id")
    for name in ("statuses", "messages", "contacts"):
        _expect(value.get(name), list, f"value.{name}")
    for item in value.get("statuses") or []:
        _expect(item, Mapping, "a status", optional=False)
        for key in _STATUS_SCALARS:
            v = item.get(key)
            if v is not None and type(v) not in _SCALAR:  # the common case without a call (bool fails here too)
                _expect(v, _SCALAR, f"status.{key}")
        _expect(item.get("errors"), list, "status.errors")
        for error in item.get("errors") or []:
            _expect(error, Mapping, "a status error", optional=False)
        for key in ("pricing", "conversation"):
            _expect(item.get(key), Mapping, f"status.{key}")
    for contact in value.get("contacts") or []:
        _expect(contact, Mapping, "a contact", optional=False)
        _expect(contact.get("profile"), Mapping, "contact.profile")
    for item in value.get("messages") or []:
        _expect(item, Mapping, "a message", optional=False)
        for key in ("id", "from", "timestamp", "type"):
            _expect(item.get(key), _SCALAR, f"message.{key}")
        for key in ("text", "button", "interactive", "context"):
            _expect(item.get(key), Mapping, f"message.{key}")
        interactive = item.get("interactive") or {}
        for key in ("button_reply", "list_reply"):
            _expect(interactive.get(key), Mapping, f"message.interactive.{key}")


def parse_webhook(payload: Any) -> WebhookEvents:
    events = WebhookEvents()
    if not isinstance(payload, Mapping) or payload.get("object") != "whatsapp_business_account":
        return events
    for entry in payload.get("entry") or []:
        for change in (entry or {}).get("changes") or []:
            if not isinstance(change, Mapping) or change.get("field") != "messages":
                continue
            value = change.get("value") if isinstance(change.get("value"), Mapping) else {}
            phone_number_id = str((value.get("metadata") or {}).get("phone_number_id") or "")
            for item in value.get("statuses") or []:
                status = _status(item, phone_number_id) if isinstance(item, Mapping) else None
                if status:
                    events.statuses.append(status)
            names = {
                str(c.get("wa_id")): str((c.get("profile") or {}).get("name") or "")
                for c in value.get("contacts") or []
                if isinstance(c, Mapping)
            }
            for item in value.get("messages") or []:
                message = _message(item, phone_number_id, names) if isinstance(item, Mapping) else None
                if message:
                    events.messages.append(message)
    return events
