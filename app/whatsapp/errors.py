"""Meta's error objects, parsed and classified: what should the sender do about this failure?

Two shapes reach us:
- the Graph API error envelope of a failed request
  `{"error": {"message", "type", "code", "error_subcode", "error_data": {"details"}, "fbtrace_id",
  "is_transient", "error_user_title", "error_user_msg"}}`;
- the `errors` items of a *failed* status webhook (`StatusError`: `code`, `title`, `message`,
  `error_data.details`).
Both become a `WhatsAppError`; `classify()` turns one into a `Classification` the sender acts on.

Judgement calls (Meta documents titles, not what a bulk sender should do):
- Unknown codes are PERMANENT for that recipient (never retry blindly: WhatsApp has no idempotency
  key), unless the request failed with HTTP 5xx or Meta flagged it `is_transient`.
- Errors that will fail every other recipient the same way (auth, permissions, blocked or unpaid
  account, spam limit, wrong phone number id) STOP_CAMPAIGN, so a campaign pauses instead of burning
  its audience. `100` with subcode `33` ("object does not exist") means the phone number id is wrong.
- Template-wide problems (132000/132001/132007/132012/132015/132016: wrong parameter count, missing
  translation, format policy, paused or disabled template) STOP_CAMPAIGN with `template_paused=True`
  (issue 12): every recipient would fail the same way, so the campaign pauses, the row goes back to the
  queue and the template is re-synced; resuming once Meta approves it again sends those rows.
  132005/132018 (text too long, a parameter's value) stay PERMANENT for that recipient (`template_issue`).
- `server_trouble` (HTTP 5xx, 1, 2, 131000, 131016): Meta itself is failing. Retried, and the sender
  pauses the campaign once it lasts (`SendingConfig.outage_pause_s`) instead of burning the attempts.
- Throttling (4, 80007, 130429, HTTP 429; 131056 for one recipient) is `rate_limited` /
  `recipient_only_backoff`: never the row's fault, backed off exponentially.
- 131001/131002 do not exist in Meta's list or in the v23.0 OpenAPI file: they fall to the default.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

# Titles as Meta documents them (Cloud API error codes page); the Sandbox answers with these.
META_ERROR_TITLES: dict[int, str] = {
    0: "AuthException",
    1: "API Unknown",
    2: "API Service",
    3: "API Method",
    4: "API Too Many Calls",
    10: "Permission Denied",
    100: "Invalid parameter",
    190: "Access token has expired",
    200: "API Permission",
    368: "Temporarily blocked for policies violations",
    80007: "Rate limit issues",
    130429: "Rate limit hit",
    130472: "User's number is part of an experiment",
    130497: "Business account is restricted from messaging users in this country",
    131000: "Something went wrong",
    131005: "Access denied",
    131008: "Required parameter is missing",
    131009: "Parameter value is not valid",
    131016: "Service unavailable",
    131021: "Recipient cannot be sender",
    131026: "Message undeliverable",
    131031: "Account has been locked",
    131037: "WhatsApp provided number needs display name approval before message can be sent",
    131042: "Business eligibility payment issue",
    131045: "Incorrect certificate",
    131047: "Re-engagement message",
    131048: "Spam rate limit hit",
    131049: "This message was not delivered to maintain healthy ecosystem engagement",
    131050: "User has stopped marketing messages",
    131051: "Unsupported message type",
    131052: "Media download error",
    131053: "Media upload error",
    131056: "(Business Account, Consumer Account) pair rate limit hit",
    131057: "Account in maintenance mode",
    132000: "Number of parameters does not match the expected number of params",
    132001: "Template name does not exist in the translation",
    132005: "Translated text too long",
    132007: "Template format character policy violated",
    132012: "Template parameter format mismatch",
    132015: "Template is paused",
    132016: "Template is disabled",
    132018: "There was an issue with the parameters in your template",
    133010: "Phone number not registered",
    135000: "Generic user error",
}


class ErrorKind(str, Enum):
    RETRYABLE = "retryable"  # try this recipient again later (backoff + jitter)
    PERMANENT = "permanent"  # fail this recipient with Meta's code and title
    STOP_CAMPAIGN = "stop_campaign"  # every other recipient would fail the same way: pause


RETRYABLE = ErrorKind.RETRYABLE
PERMANENT = ErrorKind.PERMANENT
STOP_CAMPAIGN = ErrorKind.STOP_CAMPAIGN

RATE_LIMIT_CODES = frozenset({4, 80007, 130429})
RETRYABLE_CODES = frozenset({1, 2, 4, 80007, 130429, 131000, 131016, 131056, 131057})
PERMANENT_CODES = frozenset(
    {
        100,
        130472,
        130497,
        131008,
        131009,
        131021,
        131026,
        131047,
        131049,
        131050,
        131051,
        131052,
        131053,
        132000,
        132001,
        132005,
        132007,
        132012,
        132015,
        132016,
        132018,
        135000,
    }
)
STOP_CAMPAIGN_CODES = frozenset({0, 3, 10, 190, 368, 131005, 131031, 131037, 131042, 131045, 131048, 133010})
TEMPLATE_ISSUE_CODES = frozenset({132000, 132001, 132005, 132007, 132012, 132015, 132016, 132018})
# Template-wide: the template itself (not the recipient) is wrong, paused or disabled: pause, keep the rows.
TEMPLATE_PAUSE_CODES = frozenset({132000, 132001, 132007, 132012, 132015, 132016})
# Meta is failing (not us, not the recipient): wait it out, pause if it lasts.
SERVER_TROUBLE_CODES = frozenset({1, 2, 131000, 131016})
RECIPIENT_BACKOFF_CODES = frozenset({131056})
UNSUBSCRIBE_CODES = frozenset({131050})
# Graph "permission" codes: 200-299.
_PERMISSION_RANGE = range(200, 300)
_OBJECT_MISSING_SUBCODE = 33  # (#100) "Object with ID ... does not exist": wrong phone number / WABA id


@dataclass(frozen=True)
class WhatsAppError:
    """One failure as Meta described it. `code` is None when Meta never answered (network)."""

    code: int | None
    title: str
    details: str = ""
    http_status: int | None = None
    message: str = ""
    type: str = ""
    subcode: int | None = None
    fbtrace_id: str = ""
    is_transient: bool | None = None

    def __str__(self) -> str:
        code = f"#{self.code} " if self.code is not None else ""
        extra = f": {self.details}" if self.details and self.details != self.title else ""
        return f"{code}{self.title}{extra}"


@dataclass(frozen=True)
class Classification:
    kind: ErrorKind
    rate_limited: bool = False  # 130429 / 4 / 80007 / HTTP 429: set the shared per-number cool-down
    recipient_only_backoff: bool = False  # 131056: back off this recipient only, not the whole number
    unsubscribe_contact: bool = False  # 131050: the person opted out of marketing messages
    template_issue: bool = False  # the template itself is wrong: everyone will fail the same way
    template_paused: bool = False  # template-wide (TEMPLATE_PAUSE_CODES): pause, requeue, re-sync the template
    server_trouble: bool = False  # Meta is failing (5xx, 131000, 131016): pause once it lasts

    @property
    def retryable(self) -> bool:
        return self.kind is ErrorKind.RETRYABLE

    @property
    def permanent(self) -> bool:
        return self.kind is ErrorKind.PERMANENT

    @property
    def stops_campaign(self) -> bool:
        return self.kind is ErrorKind.STOP_CAMPAIGN


class WhatsAppApiError(Exception):
    """Raised by the client. `ambiguous`: the request may have reached Meta (timeout or connection
    lost after sending): mark the recipient unknown and reconcile from webhooks, never resend blindly."""

    def __init__(
        self,
        error: WhatsAppError,
        classification: Classification | None = None,
        *,
        ambiguous: bool = False,
        retry_after: float | None = None,
    ):
        super().__init__(str(error))
        self.error = error
        self.classification = classification or classify(error)
        self.ambiguous = ambiguous
        self.retry_after = retry_after

    @property
    def code(self) -> int | None:
        return self.error.code

    @property
    def title(self) -> str:
        return self.error.title

    @property
    def retryable(self) -> bool:
        return self.classification.retryable


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


_CODE_PREFIX = re.compile(r"^\(#\d+\)\s*")


def _clean(text: Any) -> str:
    return _CODE_PREFIX.sub("", str(text or "")).strip()


def parse_error_object(obj: Mapping[str, Any] | None, http_status: int | None = None) -> WhatsAppError:
    """One error object (the value of "error", or an item of a status webhook's "errors")."""
    obj = obj if isinstance(obj, Mapping) else {}
    code = _int(obj.get("code"))
    message = str(obj.get("message") or "")
    error_data = obj.get("error_data") if isinstance(obj.get("error_data"), Mapping) else {}
    title = _clean(obj.get("title") or obj.get("error_user_title") or message)
    if not title:
        title = META_ERROR_TITLES.get(code, f"HTTP {http_status}" if http_status else "Unknown error")  # type: ignore[arg-type]
    details = str(error_data.get("details") or obj.get("error_user_msg") or "")
    transient = obj.get("is_transient")
    return WhatsAppError(
        code=code,
        title=title,
        details=details,
        http_status=http_status,
        message=message,
        type=str(obj.get("type") or ""),
        subcode=_int(obj.get("error_subcode")),
        fbtrace_id=str(obj.get("fbtrace_id") or ""),
        is_transient=transient if isinstance(transient, bool) else None,
    )


def parse_error_response(payload: Any, http_status: int | None = None, *, raw_text: str = "") -> WhatsAppError:
    """A failed response body (already JSON-decoded, or None when it was not JSON)."""
    if isinstance(payload, Mapping) and isinstance(payload.get("error"), Mapping):
        return parse_error_object(payload["error"], http_status)
    title = f"HTTP {http_status}" if http_status else "Unexpected response"
    return WhatsAppError(code=None, title=title, details=(raw_text or "")[:500], http_status=http_status)


def classify(error: WhatsAppError) -> Classification:
    code, status = error.code, error.http_status
    template_issue = code in TEMPLATE_ISSUE_CODES
    if code in STOP_CAMPAIGN_CODES or (code is not None and code in _PERMISSION_RANGE):
        return Classification(STOP_CAMPAIGN)
    if code == 100 and error.subcode == _OBJECT_MISSING_SUBCODE:
        return Classification(STOP_CAMPAIGN)
    if code in TEMPLATE_PAUSE_CODES:
        return Classification(STOP_CAMPAIGN, template_issue=True, template_paused=True)
    if code in RATE_LIMIT_CODES or status == 429:
        return Classification(RETRYABLE, rate_limited=True)
    if code in RECIPIENT_BACKOFF_CODES:
        return Classification(RETRYABLE, recipient_only_backoff=True)
    if code in SERVER_TROUBLE_CODES or (status is not None and status >= 500):
        return Classification(RETRYABLE, server_trouble=True)
    if code in RETRYABLE_CODES:
        return Classification(RETRYABLE)
    if code in UNSUBSCRIBE_CODES:
        return Classification(PERMANENT, unsubscribe_contact=True)
    if code in PERMANENT_CODES:
        return Classification(PERMANENT, template_issue=template_issue)
    if code is None and status is None:  # network failure: Meta never answered
        return Classification(RETRYABLE)
    if status == 401:  # an auth failure without a known code is still an auth failure
        return Classification(STOP_CAMPAIGN)
    if error.is_transient:
        return Classification(RETRYABLE)
    return Classification(PERMANENT)
