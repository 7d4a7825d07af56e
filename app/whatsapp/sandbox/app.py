"""The Sandbox's HTTP API: the Cloud API endpoints Hubcast uses, plus /_sandbox/* admin endpoints.

Cloud API (same paths, JSON shapes and error envelopes as graph.facebook.com):
  POST /{version}/{phone-number-id}/messages        send (template or text)
  GET  /{version}/{waba-id}/message_templates       paged with cursors and `paging.next`
  GET  /{version}/{phone-number-id}                 the connection test
Admin (same bearer token; only /_sandbox/health is open):
  GET  /_sandbox/health
  GET  /_sandbox/log            accepted sends: total, per recipient, recent, rejections, webhook stats
  GET/POST /_sandbox/config     read / change settings at runtime; faults: {"rate_limit_for_s": 5,
                                "server_error_for_s": 5, "hang_for_s": 5, "bad_gateway_for_s": 5} (0 ends a
                                fault); issue 12: "template_errors", "held_count", "throttle_code",
                                "retry_after_s", "usage_regain_minutes", "failure_rules" (any code, by webhook)
  POST /_sandbox/reset          forget the log, pending webhooks and faults; restore startup settings
  POST /_sandbox/inbound        {"from": "+336...", "text": "STOP"} (or "button": {"text","payload"},
                                "context_message_id") -> an inbound message webhook
  POST /_sandbox/account_webhook {"field": "message_template_status_update", "value": {...}} -> one of
                                Meta's other webhook fields, signed (see account_changes.py)

Meta's behaviour reproduced on purpose:
- Order: latency, token check (#190, HTTP 401), unknown node (#100 subcode 33), faults, validation,
  throughput cap (#130429 "Rate limit hit", HTTP 400 like Meta; `rate_limit_http_status` can make it 429).
- Numbers matching a failure rule (default: ending 0000 -> #131026, 0001 -> #131049) are ACCEPTED with a
  wamid and fail later in a *failed status webhook*, as Meta reports undeliverable messages.
- A text message fails with #131047 (re-engagement) unless that number sent us a message in the last
  24 hours (see /_sandbox/inbound): outside that window only templates are allowed.
- "hang" accepts the message (logged, webhooks scheduled) and answers only after `hang_seconds`: the
  client times out although the message went out, the ambiguous case the sender must reconcile.
- "bad_gateway" accepts the message, then answers HTTP 502 with an HTML page (no Graph error): what a proxy
  in front of Meta answers when it lost the reply of a request it forwarded (ambiguous too).
- `template_errors` {name: code}: every send of that template is refused with the code (132015 paused,
  132016 disabled...; the template list shows it PAUSED / DISABLED until the entry is removed).
- `held_count`: the next N template sends answer `message_status: held_for_quality_assessment` and their
  statuses come `held_seconds` later, as Meta holds a campaign while it judges its quality.
- Throttle answers (`throttle_code`) may carry `Retry-After` and `X-Business-Use-Case-Usage`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import dataclasses
import hmac
import json
import logging
import random
import re
import time
from collections import Counter, deque
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from .account_changes import build_change
from .catalog import Catalog, load_templates
from .config import SandboxConfig
from .messaging_limit import DailyLimit, tier_name
from .ratelimit import TokenBucket
from .validation import AcceptedSend, ApiError, invalid, missing_object, validate_send
from .webhooks import WebhookDispatcher, new_wamid

log = logging.getLogger(__name__)

FAULTS = ("rate_limit", "server_error", "hang", "bad_gateway")
_TEMPLATE_STATUS_FOR_ERROR = {132015: "PAUSED", 132016: "DISABLED"}
_VERSION = re.compile(r"^v\d+\.\d+$")
_REENGAGEMENT_WINDOW_S = 24 * 3600


class SendLog:
    """Accepted sends: counts per recipient, the latest entries, and an optional JSONL file."""

    def __init__(self, path: str = ""):
        self.path = path
        self._file = open(path, "a", encoding="utf-8", buffering=1) if path else None
        self.clear()

    def clear(self) -> None:
        self.total = 0
        self.per_recipient: Counter[str] = Counter()
        self.rejected: Counter[int] = Counter()
        self.recent: deque[dict[str, Any]] = deque(maxlen=200)

    def record(self, entry: dict[str, Any]) -> None:
        self.total += 1
        self.per_recipient["+" + entry["wa_id"]] += 1  # normalised: "+33 6 12..." and "33612..." are one person
        self.recent.append(entry)
        if self._file:
            self._file.write(json.dumps(entry, ensure_ascii=False) + "\n")

    def close(self) -> None:
        if self._file:
            self._file.close()


class SandboxState:
    def __init__(self, config: SandboxConfig):
        self.config = config
        self.initial = copy.deepcopy(config)
        self.rng = random.Random(config.seed)
        self.catalog = Catalog(load_templates(config.templates_file, config.template_count))
        self.bucket = TokenBucket(config.mps)
        self.daily_limit = DailyLimit()  # the messaging limit tier (messaging_limit.py)
        self.log = SendLog(config.log_file)
        self.faults: dict[str, float] = {}
        self.last_inbound: dict[str, float] = {}
        self.webhooks = WebhookDispatcher(config, self.rng)

    def fault_active(self, name: str) -> bool:
        return self.faults.get(name, 0.0) > time.monotonic()

    def apply(self, changes: dict[str, Any]) -> None:
        faults = {
            k: changes.pop(k) for k in list(changes) if k.removesuffix("_for_s") in FAULTS and k.endswith("_for_s")
        }
        self.config.update(changes)  # raises ValueError before anything changed
        for key, seconds in faults.items():
            self.faults[key.removesuffix("_for_s")] = time.monotonic() + max(0.0, float(seconds))
        if "mps" in changes:
            self.bucket = TokenBucket(self.config.mps)

    def reset(self) -> None:
        for f in dataclasses.fields(self.config):
            setattr(self.config, f.name, copy.deepcopy(getattr(self.initial, f.name)))
        self.bucket = TokenBucket(self.config.mps)
        self.daily_limit.clear()
        self.faults.clear()
        self.catalog.restore()  # template statuses an account webhook changed
        self.last_inbound.clear()
        self.log.clear()
        self.webhooks.clear()


def _error(exc: ApiError) -> JSONResponse:
    return JSONResponse(
        exc.body(), status_code=exc.http_status, headers={"WWW-Authenticate": "OAuth"} if exc.code == 190 else None
    )


def _check_token(request: Request, state: SandboxState) -> None:
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else request.query_params.get("access_token", "")
    if not token or not hmac.compare_digest(token.encode(), state.config.access_token.encode()):
        raise ApiError(190, http_status=401, message="Invalid OAuth access token - Cannot parse access token")


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body() or b"null")
    except (ValueError, UnicodeDecodeError):
        raise invalid("The request body is not valid JSON") from None


def _state(request: Request) -> SandboxState:
    return request.app.state.sandbox


async def _graph_prelude(request: Request) -> SandboxState:
    state = _state(request)
    if state.config.latency_ms > 0:
        await asyncio.sleep(state.config.latency_ms / 1000)
    if not _VERSION.match(request.path_params["version"]):
        raise ApiError(2500, message=f"Unknown path components: {request.url.path}", title="Unknown path")
    _check_token(request, state)
    return state


async def send_message(request: Request) -> JSONResponse:
    # Stamped on arrival, before the simulated latency: a stalled event loop wakes every expired sleep at once,
    # so a stamp taken after the sleep reads as a burst the client never sent (throughput is judged on these).
    arrived = datetime.now(UTC)
    try:
        state = await _graph_prelude(request)
        if request.path_params["node"] != state.config.phone_number_id:
            raise missing_object(request.path_params["node"], "post")
        if state.fault_active("server_error"):
            raise ApiError(131000, "Simulated server error (sandbox fault)", http_status=500)
        if state.fault_active("rate_limit"):
            code = state.config.throttle_code
            raise ApiError(code, "Cloud API message throughput has been reached. (sandbox fault)", http_status=429)
        accepted = validate_send(await _json_body(request), state.catalog)
        template_error = state.config.template_errors.get(str((accepted.template or {}).get("name") or ""))
        if accepted.kind == "template" and template_error:
            raise ApiError(template_error, "The template cannot be sent (sandbox template_errors)")
        if not state.bucket.try_acquire():
            raise ApiError(
                130429,
                "Cloud API message throughput has been reached.",
                http_status=state.config.rate_limit_http_status,
            )
        if accepted.kind == "template" and not state.daily_limit.admit(
            accepted.wa_id, state.config.messaging_limit, state.config.messaging_window_s
        ):
            raise ApiError(
                131048,
                f"Message failed to send: this business reached its messaging limit of "
                f"{state.config.messaging_limit} people per {state.config.messaging_window_s:g} s (sandbox)",
            )
    except ApiError as exc:
        _state(request).log.rejected[exc.code] += 1
        return _throttle_headers(_state(request), _error(exc))
    hang = state.fault_active("hang")
    held = accepted.kind == "template" and state.config.held_count > 0
    if held:
        state.config.held_count -= 1
    wamid = _accept(state, accepted, arrived=arrived, hung=hang, held=held)
    if hang:
        await asyncio.sleep(state.config.hang_seconds)
    if state.fault_active("bad_gateway"):  # accepted, but the answer is lost on the way back
        return HTMLResponse("<html><body><h1>502 Bad Gateway</h1></body></html>", status_code=502)
    message: dict[str, Any] = {"id": wamid}
    if accepted.kind == "template" and str(accepted.template.get("category", "")).upper() == "MARKETING":  # type: ignore[union-attr]
        message["message_status"] = "accepted"
    if held:
        message["message_status"] = "held_for_quality_assessment"
    return JSONResponse(
        {
            "messaging_product": "whatsapp",
            "contacts": [{"input": accepted.to, "wa_id": accepted.wa_id}],
            "messages": [message],
        }
    )


def _throttle_headers(state: SandboxState, response: JSONResponse) -> JSONResponse:
    """Meta's hints on a throttle answer: how long to wait (when configured)."""
    cfg = state.config
    if response.status_code in (400, 429) and b'"code":%d' % cfg.throttle_code in response.body.replace(b" ", b""):
        if cfg.retry_after_s > 0:
            response.headers["Retry-After"] = f"{cfg.retry_after_s:g}"
        if cfg.usage_regain_minutes > 0:
            usage = {
                cfg.waba_id: [
                    {
                        "type": "whatsapp_business_management",
                        "call_count": 100,
                        "total_cputime": 1,
                        "total_time": 1,
                        "estimated_time_to_regain_access": cfg.usage_regain_minutes,
                    }
                ]
            }
            response.headers["X-Business-Use-Case-Usage"] = json.dumps(usage, separators=(",", ":"))
    return response


def _failure_code(state: SandboxState, accepted: AcceptedSend) -> int | None:
    for suffix, code in state.config.failure_rules.items():
        if accepted.wa_id.endswith(suffix):
            return code
    if accepted.kind == "text":
        last = state.last_inbound.get(accepted.wa_id, float("-inf"))
        if time.monotonic() - last > _REENGAGEMENT_WINDOW_S:
            return 131047
    return None


def _accept(
    state: SandboxState,
    accepted: AcceptedSend,
    *,
    arrived: datetime | None = None,
    hung: bool = False,
    held: bool = False,
) -> str:
    wamid = new_wamid()
    template = accepted.template or {}
    category = str(template.get("category") or "SERVICE")
    failure = _failure_code(state, accepted)
    entry = {
        "at": (arrived or datetime.now(UTC)).isoformat(timespec="milliseconds"),
        "wamid": wamid,
        "to": accepted.to,
        "wa_id": accepted.wa_id,
        "type": accepted.kind,
        "template": template.get("name"),
        "language": template.get("language"),
        "biz_opaque_callback_data": accepted.biz_opaque_callback_data,
        "text": accepted.text,
        "outcome": f"failed:{failure}" if failure else "accepted",
    }
    if hung:  # answered only after `hang_seconds`: the client probably gave up although it went out
        entry["hung"] = True
    if held:
        entry["held"] = True
    if state.fault_active("bad_gateway"):
        entry["bad_gateway"] = True
    state.log.record(entry)
    state.webhooks.plan_message(
        wamid=wamid,
        wa_id=accepted.wa_id,
        biz_opaque=accepted.biz_opaque_callback_data,
        category=category,
        failure_code=failure,
        delay_s=state.config.held_seconds if held else 0.0,
    )
    return wamid


def _encode_cursor(index: int) -> str:
    return base64.urlsafe_b64encode(f"sbx:{index}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, number = text.partition(":")
        if prefix != "sbx":
            raise ValueError(cursor)
        return int(number)
    except ValueError:
        raise invalid("Invalid parameter: cursor is malformed or expired") from None


async def list_templates(request: Request) -> JSONResponse:
    try:
        state = await _graph_prelude(request)
        if request.path_params["node"] != state.config.waba_id:
            raise missing_object(request.path_params["node"], "get")
        query = request.query_params
        try:
            limit = int(query.get("limit", "25"))
        except ValueError:
            raise invalid("Invalid parameter: limit must be an integer") from None
        if not 1 <= limit <= 1000:
            raise invalid("Invalid parameter: limit must be between 1 and 1000")
        templates = [
            t
            for t in state.catalog.templates
            if all(
                not query.get(k) or str(t.get(k, "")).lower() == query[k].lower()
                for k in ("status", "category", "language")
            )
            and (not query.get("name") or query["name"].lower() in t["name"].lower())
        ]
        start = _decode_cursor(query["after"]) + 1 if query.get("after") else 0
        page = templates[start : start + limit]
        fields = [f.strip() for f in query.get("fields", "").split(",") if f.strip()]
        data = [{k: v for k, v in t.items() if not fields or k in fields or k == "id"} for t in page]
        for item in data:  # a template refused by `template_errors` is listed as Meta shows it then
            shown = _TEMPLATE_STATUS_FOR_ERROR.get(state.config.template_errors.get(str(item.get("name"))) or 0)
            if shown and "status" in item:
                item["status"] = shown
    except ApiError as exc:
        return _error(exc)
    body: dict[str, Any] = {"data": data}
    if page:
        body["paging"] = {"cursors": {"before": _encode_cursor(start), "after": _encode_cursor(start + len(page) - 1)}}
        if start + len(page) < len(templates):
            params = dict(query)
            params.pop("access_token", None)
            params.update(limit=str(limit), after=body["paging"]["cursors"]["after"])
            body["paging"]["next"] = str(request.url.replace_query_params(**params))
    return JSONResponse(body)


async def create_template(request: Request) -> JSONResponse:
    """POST /{version}/{waba_id}/message_templates: Meta's create endpoint. The Sandbox has no review,
    so a well-formed template is APPROVED at once and can be sent immediately."""
    try:
        state = await _graph_prelude(request)
        if request.path_params["node"] != state.config.waba_id:
            raise missing_object(request.path_params["node"], "post")
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise invalid("Invalid parameter: body must be a JSON object")
        name, language, category = body.get("name"), body.get("language"), body.get("category")
        components = body.get("components")
        if not isinstance(name, str) or not name or not isinstance(language, str) or not language:
            raise invalid("Invalid parameter: name and language are required")
        if category not in ("MARKETING", "UTILITY", "AUTHENTICATION") or not isinstance(components, list):
            raise invalid("Invalid parameter: category and components are required")
        template = {
            "id": str(5_000_000_000_000_000 + len(state.catalog.templates)),
            "name": name,
            "language": language,
            "status": "APPROVED",
            "category": category,
            "parameter_format": body.get("parameter_format") or "POSITIONAL",
            "components": components,
        }
        if not state.catalog.add(template):
            raise invalid("Invalid parameter: content in this language already exists")
    except ApiError as exc:
        return _error(exc)
    return JSONResponse({"id": template["id"], "status": "APPROVED", "category": category})


async def get_node(request: Request) -> JSONResponse:
    try:
        state = await _graph_prelude(request)
        node, cfg = request.path_params["node"], state.config
        if node == cfg.phone_number_id:
            info = {
                "id": cfg.phone_number_id,
                "display_phone_number": cfg.display_phone_number,
                "verified_name": cfg.verified_name,
                "quality_rating": "GREEN",
                "code_verification_status": "VERIFIED",
                "name_status": "APPROVED",
                "platform_type": "CLOUD_API",
                "throughput": {"level": "STANDARD"},
                "messaging_limit_tier": tier_name(cfg.messaging_limit),
            }
            default = ("id", "display_phone_number", "verified_name", "quality_rating")
        elif node == cfg.waba_id:
            info = {
                "id": cfg.waba_id,
                "name": cfg.verified_name,
                "currency": "USD",
                "timezone_id": "1",
                "message_template_namespace": "sandbox_namespace",
            }
            default = ("id", "name")
        else:
            raise missing_object(node, "get")
    except ApiError as exc:
        return _error(exc)
    fields = [f.strip() for f in request.query_params.get("fields", "").split(",") if f.strip()] or list(default)
    return JSONResponse({k: v for k, v in info.items() if k in fields or k == "id"})


# --- admin ------------------------------------------------------------------------------------


async def _admin(request: Request) -> SandboxState:
    state = _state(request)
    _check_token(request, state)
    return state


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True, "phone_number_id": _state(request).config.phone_number_id})


async def show_log(request: Request) -> JSONResponse:
    try:
        state = await _admin(request)
    except ApiError as exc:
        return _error(exc)
    sends = state.log
    body = {
        "total": sends.total,
        "unique_recipients": len(sends.per_recipient),
        "duplicates": {to: n for to, n in sends.per_recipient.items() if n > 1},
        "rejected": {str(code): n for code, n in sends.rejected.items()},
        "recent": list(sends.recent)[-_int(request.query_params.get("recent"), 50) :],
        "webhooks": dict(state.webhooks.stats, recent_failures=list(state.webhooks.recent_failures)),
    }
    if request.query_params.get("per_recipient", "1") != "0":
        body["per_recipient"] = dict(sends.per_recipient)
    return JSONResponse(body)


def _int(value: str | None, default: int) -> int:
    try:
        return max(1, int(value)) if value else default
    except ValueError:
        return default


async def config_endpoint(request: Request) -> JSONResponse:
    try:
        state = await _admin(request)
        if request.method == "POST":
            changes = await _json_body(request)
            if not isinstance(changes, dict):
                raise invalid("Expected a JSON object of settings")
            try:
                state.apply(changes)
            except (ValueError, TypeError, KeyError) as exc:
                return JSONResponse({"error": {"message": str(exc), "code": 100}}, status_code=400)
    except ApiError as exc:
        return _error(exc)
    now = time.monotonic()
    faults = {name: round(until - now, 3) for name, until in state.faults.items() if until > now}
    return JSONResponse({"config": state.config.public(), "faults": faults})


async def reset(request: Request) -> JSONResponse:
    try:
        state = await _admin(request)
    except ApiError as exc:
        return _error(exc)
    state.reset()
    return JSONResponse({"ok": True})


async def inbound(request: Request) -> JSONResponse:
    try:
        state = await _admin(request)
        body = await _json_body(request)
        body = body if isinstance(body, dict) else {}
        sender = body.get("from")
        wa_id = re.sub(r"\D", "", sender) if isinstance(sender, str) else ""
        button = body.get("button") if isinstance(body.get("button"), dict) else None
        text = body.get("text")
        if not wa_id or (not button and not (isinstance(text, str) and text)):
            raise invalid('Expected {"from": "<phone>", "text": "..."} or a "button": {"text", "payload"}')
    except ApiError as exc:
        return _error(exc)
    state.last_inbound[wa_id] = time.monotonic()
    wamid = state.webhooks.plan_inbound(
        wa_id=wa_id,
        name=str(body.get("name") or "Sandbox contact"),
        text=text or "",
        button=button,
        context_id=body.get("context_message_id"),
    )
    return JSONResponse({"id": wamid})


async def account_webhook(request: Request) -> JSONResponse:
    try:
        state = await _admin(request)
        field, value = build_change(await _json_body(request), state.catalog, state.config)
    except ApiError as exc:
        return _error(exc)
    state.webhooks.plan_change(field, value)
    return JSONResponse({"field": field, "value": value})


async def _not_found(request: Request, exc: HTTPException) -> JSONResponse:
    method = request.method.lower()
    message = (
        f"Unknown path components: {request.url.path}" if exc.status_code == 404 else f"Unsupported {method} request."
    )
    not_found = exc.status_code == 404
    return JSONResponse(
        {
            "error": {
                "message": message,
                "type": "OAuthException",
                "code": 2500 if not_found else 100,
                "fbtrace_id": "Asandbox",
            }
        },
        status_code=400 if not_found else 405,
    )


def create_app(config: SandboxConfig | None = None) -> Starlette:
    state = SandboxState(config or SandboxConfig())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        await state.webhooks.start()
        log.info(
            "sandbox: %d templates, webhooks to %s",
            len(state.catalog.templates),
            state.config.webhook_url or "(nowhere)",
        )
        try:
            yield
        finally:
            await state.webhooks.stop()
            state.log.close()

    routes = [
        Route("/_sandbox/health", health, methods=["GET"]),
        Route("/_sandbox/log", show_log, methods=["GET"]),
        Route("/_sandbox/config", config_endpoint, methods=["GET", "POST"]),
        Route("/_sandbox/reset", reset, methods=["POST"]),
        Route("/_sandbox/inbound", inbound, methods=["POST"]),
        Route("/_sandbox/account_webhook", account_webhook, methods=["POST"]),
        Route("/{version}/{node}/messages", send_message, methods=["POST"]),
        Route("/{version}/{node}/message_templates", list_templates, methods=["GET"]),
        Route("/{version}/{node}/message_templates", create_template, methods=["POST"]),
        Route("/{version}/{node}", get_node, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: _not_found})
    app.state.sandbox = state
    return app
