"""Channel connections (SPEC S4): connect a WhatsApp Cloud API number, edit, disconnect, test.

All of it is `channels:manage` (admin), checked here again whatever the UI did, and audit-logged.
Secrets (access token, app secret, verify token) are write-only: callers get whether they are set,
never their values, except a verify token Hubcast generated, returned once so the admin can paste it
into Meta's webhook settings. Encryption at rest is the model column type's job, not this module's.

The Sandbox channel is Hubcast's own simulator: its ids and secrets are generated to match the local
Sandbox process, so it cannot be edited or disconnected here, only tested.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, TypeVar
from urllib.parse import urlsplit

from sqlalchemy import func
from sqlmodel import Session, select

from app.domain import permissions as perm
from app.models import Campaign, Channel, User
from app.services.access import get_or_raise, require
from app.services.accounts import audit
from app.services.channels import messaging_limit
from app.services.paging import fmt_time
from app.settings import channel_api_hosts, get_settings
from app.timeutil import utcnow
from app.whatsapp.client import CloudApiClient
from app.whatsapp.errors import META_ERROR_TITLES, WhatsAppApiError

KIND_CLOUD, KIND_SANDBOX = "whatsapp_cloud", "sandbox"
CONNECTED, DISCONNECTED, ERROR = "connected", "disconnected", "error"
DEFAULT_API_BASE_URL = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v23.0"
DEFAULT_MPS = 80
MAX_MPS = 1000
MAX_DISPLAY_NAME = 120  # Channel.display_name's column
CONNECTION_TEST_TIMEOUT_S = 10
WEBHOOK_PATH = "/webhooks/whatsapp"
# Campaigns in these states still need their channel; disconnecting tells the admin how many there are.
_ACTIVE_CAMPAIGN_STATES = ("scheduled", "sending", "paused")

_DIGITS = re.compile(r"^\d{1,64}$")
_VERSION = re.compile(r"^v\d{1,3}\.\d{1,3}$")
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
_SECRET_FIELDS = ("access_token", "app_secret", "verify_token")
_CONNECTION_FIELDS = ("phone_number_id", "business_account_id", "api_base_url", "api_version", "access_token")

T = TypeVar("T")


class ChannelError(ValueError):
    """Bad input or an impossible operation; the message is shown to the admin as is."""


@dataclass(frozen=True)
class Problem:
    """A failed connection test, told twice: `public` in Hubcast's own words (code, HTTP status, what failed),
    shown to every role on the Channels page; `detail` with what the host answered (Meta's message, or a raw
    body when it was not a WhatsApp API error), for admins only: a body is whatever that host chose to send."""

    public: str
    detail: str


@dataclass(frozen=True)
class SaveResult:
    channel: Channel
    changed: tuple[str, ...]  # field names (secrets by name only)
    generated_verify_token: str | None  # shown once, when Hubcast generated it

    @property
    def connection_changed(self) -> bool:
        return any(name in _CONNECTION_FIELDS for name in self.changed)


@dataclass(frozen=True)
class ConnectionResult:
    ok: bool
    status: str
    message: str  # Meta's error title/message when not ok; the number's name when ok
    display_phone_number: str = ""


@dataclass(frozen=True)
class DisconnectResult:
    channel: Channel
    active_campaigns: int  # scheduled / sending / paused campaigns that used it


# --- helpers shared with the template sync -----------------------------------------------------


def run_async(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine from synchronous service code, also when called inside a running event loop
    (a Reflex handler): then it runs on a short-lived thread with its own loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())  # type: ignore[arg-type]
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()  # type: ignore[arg-type]


def connection_facts(channel: Channel) -> SimpleNamespace:
    """A plain copy of what the client needs, read before any network call, so no ORM object is
    touched from the thread/loop that does the HTTP."""
    return SimpleNamespace(
        api_base_url=channel.api_base_url,
        api_version=channel.api_version,
        phone_number_id=channel.phone_number_id,
        business_account_id=channel.business_account_id,
        access_token=channel.access_token,
    )


def client_for(facts: Any, *, timeout: float = CONNECTION_TEST_TIMEOUT_S) -> CloudApiClient:
    return CloudApiClient.from_channel(facts, timeout=timeout, max_connections=4)


def describe_api_error(exc: WhatsAppApiError) -> str:
    """Meta's own words: "#190 Invalid OAuth access token ..."; never the token or a URL with it."""
    return str(exc.error)[:500]


def public_api_error(exc: WhatsAppApiError) -> str:
    """The same failure in Hubcast's words only (no text from the response): safe for every role."""
    error = exc.error
    if error.code is not None:
        # Meta's table calls #190 "expired"; a wrong token answers it too.
        title = "Access token invalid or expired" if error.code == 190 else META_ERROR_TITLES.get(error.code, "")
        title = title or "Error from the WhatsApp API"
        return f"#{error.code} {title}" + (f" (HTTP {error.http_status})" if error.http_status else "")
    if error.http_status:
        return f"HTTP {error.http_status}: the API host's answer was not a WhatsApp API answer."
    return "Timeout: the API host did not answer." if error.title == "Timeout" else "Connection error: no answer."


def webhook_url(public_url: str | None = None) -> str:
    return (public_url or get_settings().public_url).rstrip("/") + WEBHOOK_PATH


def is_usable(channel: Channel | None) -> bool:
    """Whether a campaign may use this channel: connected (a failed test or a disconnect stops it)."""
    return channel is not None and channel.status == CONNECTED


def _channel(session: Session, channel_id: Any) -> Channel:
    return get_or_raise(session, Channel, channel_id, ChannelError, "Unknown channel.")


# --- validation ----------------------------------------------------------------------------------


def _text(form: Mapping[str, Any], key: str, limit: int = 2000) -> str:
    value = form.get(key)
    if value is None or isinstance(value, (dict, list, tuple, set, bool)):
        return ""
    return str(value).strip()[:limit]


def _secret(form: Mapping[str, Any], key: str, label: str, errors: list[str]) -> str:
    value = _text(form, key, 4096)
    if value and (len(value) > 2048 or any(c.isspace() for c in value) or not value.isprintable()):
        errors.append(f"The {label} must be a single line without spaces (as Meta shows it).")
    return value


def validate_api_base_url(url: str) -> str:
    """https, or http only to this machine (the Sandbox, a local proxy); no path tricks or credentials."""
    url = (url or DEFAULT_API_BASE_URL).strip().rstrip("/")
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("https", "http") or not host:
        raise ChannelError("The API base URL must look like https://graph.facebook.com.")
    if parts.scheme == "http" and host not in _LOCAL_HOSTS:
        raise ChannelError("The API base URL must use https (plain http is only allowed for localhost).")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ChannelError("The API base URL may not contain credentials, a query or a fragment.")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise ChannelError("The API base URL has an invalid port.") from None
    if len(url) > 255:
        raise ChannelError("The API base URL is too long (at most 255 characters).")
    if not host_allowed(url):
        raise ChannelError(
            f"The API base URL must be Meta's Graph host ({DEFAULT_API_BASE_URL}) or this install's Sandbox "
            f"({get_settings().sandbox_url}); an operator can allow other hosts with HUBCAST_CHANNEL_API_HOSTS."
        )
    return url


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or {"https": 443, "http": 80}.get(scheme)
    except ValueError:
        port = -1
    return scheme, (parts.hostname or "").lower(), port


def host_allowed(url: str) -> bool:
    """Whether a channel's access token may be sent to `url`: Meta's Graph host, the configured Sandbox, or an
    origin the operator listed in HUBCAST_CHANNEL_API_HOSTS (`http://127.0.0.1:*` allows any port). The token
    is a bearer credential for the business's WhatsApp account: sent anywhere else, it is stolen."""
    scheme, host, port = _origin(url)
    for allowed in (DEFAULT_API_BASE_URL, get_settings().sandbox_url, *channel_api_hosts()):
        any_port = allowed.endswith(":*")
        a_scheme, a_host, a_port = _origin(allowed.removesuffix(":*"))
        if (scheme, host) == (a_scheme, a_host) and (any_port or port == a_port):
            return True
    return False


def _display_name(form: Mapping[str, Any], errors: list[str]) -> str | None:
    """The business name the message preview shows: trimmed, spaces collapsed, 1 to 120 characters, or empty
    (the next connection test fills it with Meta's verified name). None when refused (with the reason)."""
    value = form.get("display_name")
    if value is not None and not isinstance(value, str):
        errors.append("The display name must be text.")
        return None
    value = " ".join((value or "").split())
    if len(value) > MAX_DISPLAY_NAME:
        errors.append(f"The display name is too long (at most {MAX_DISPLAY_NAME} characters).")
        return None
    if not value.isprintable():
        errors.append("The display name may not contain control characters.")
        return None
    return value


def _parse_form(form: Any, *, creating: bool) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """(plain fields, secrets given, errors). Empty secrets on edit mean "keep the stored one"."""
    form = form if isinstance(form, Mapping) else {}
    errors: list[str] = []
    fields: dict[str, Any] = {}
    name = _text(form, "name", 500)
    if not name:
        errors.append('Enter a name for the channel (for example "Main shop number").')
    elif len(name) > 120:
        errors.append("The name is too long (at most 120 characters).")
    fields["name"] = name
    if creating or "display_name" in form:  # absent on an edit: keep the stored one
        display_name = _display_name(form, errors)
        if display_name is not None:
            fields["display_name"] = display_name
    for key, label in (("phone_number_id", "phone number ID"), ("business_account_id", "WhatsApp Business Account ID")):
        value = re.sub(r"\s+", "", _text(form, key, 500))
        if not value:
            errors.append(f"Enter the {label} (digits, from Meta's WhatsApp Manager > API setup).")
        elif not _DIGITS.match(value):
            errors.append(f"The {label} must contain digits only.")
        fields[key] = value
    try:
        fields["api_base_url"] = validate_api_base_url(_text(form, "api_base_url", 1000))
    except ChannelError as exc:
        errors.append(str(exc))
    version = _text(form, "api_version", 100) or DEFAULT_API_VERSION
    if not _VERSION.match(version):
        errors.append("The API version must look like v23.0.")
    fields["api_version"] = version
    raw_mps = _text(form, "messages_per_second", 100) or str(DEFAULT_MPS)
    try:
        mps = int(raw_mps)
    except ValueError:
        mps = 0
    if not 1 <= mps <= MAX_MPS:
        errors.append(f"Messages per second must be a whole number from 1 to {MAX_MPS} (Meta's default tier is 80).")
    fields["messages_per_second"] = mps
    given = {
        "access_token": _secret(form, "access_token", "access token", errors),
        "app_secret": _secret(form, "app_secret", "app secret", errors),
        "verify_token": _secret(form, "verify_token", "verify token", errors),
    }
    if given["verify_token"] and len(given["verify_token"]) > 255:
        errors.append("The verify token is too long (at most 255 characters).")
    if given["app_secret"] and len(given["app_secret"]) > 255:
        errors.append("The app secret is too long (at most 255 characters).")
    if creating:
        if not given["access_token"]:
            errors.append("Enter the access token (a permanent System User token with whatsapp_business_messaging).")
        if not given["app_secret"]:
            errors.append("Enter the app secret (App settings > Basic): Hubcast uses it to check webhook signatures.")
    return fields, {k: v for k, v in given.items() if v}, errors


def _name_taken(session: Session, name: str, except_id: int | None = None) -> bool:
    query = select(Channel.id).where(func.lower(Channel.name) == name.lower())
    if except_id is not None:
        query = query.where(Channel.id != except_id)
    return session.exec(query).first() is not None


# --- operations ----------------------------------------------------------------------------------


def connect_channel(*, session: Session, actor: User, form: Mapping[str, Any]) -> SaveResult:
    """Store a new WhatsApp Cloud API number. Its status stays "disconnected" until a connection test
    passes (the UI runs one right away)."""
    actor = require(session, actor, perm.CHANNELS_MANAGE)
    fields, given, errors = _parse_form(form, creating=True)
    if not errors and _name_taken(session, fields["name"]):
        errors.append(f"A channel named {fields['name']} already exists.")
    if (
        not errors
        and session.exec(
            select(Channel.id).where(Channel.phone_number_id == fields["phone_number_id"], Channel.kind == KIND_CLOUD)
        ).first()
        is not None
    ):
        errors.append(f"Phone number ID {fields['phone_number_id']} is already connected.")
    if errors:
        raise ChannelError(" ".join(errors))
    generated = None
    if not given.get("verify_token"):
        generated = given["verify_token"] = secrets.token_urlsafe(24)
    channel = Channel(kind=KIND_CLOUD, status=DISCONNECTED, last_error="Not tested yet.", **fields, **given)
    session.add(channel)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="channel.connect",
        target_type="channel",
        target_id=channel.id,
        detail={
            "name": channel.name,
            "phone_number_id": channel.phone_number_id,
            "display_name": channel.display_name,
            "verify_token_generated": generated is not None,
        },
    )
    return SaveResult(channel, tuple(fields) + tuple(given), generated)


def update_channel(*, session: Session, actor: User, channel_id: Any, form: Mapping[str, Any]) -> SaveResult:
    """Change a channel's settings; a secret left empty keeps the stored one."""
    actor = require(session, actor, perm.CHANNELS_MANAGE)
    channel = _channel(session, channel_id)
    if channel.kind == KIND_SANDBOX:
        raise ChannelError(
            "The Sandbox is Hubcast's simulator: its settings match the local Sandbox process and "
            "cannot be edited here."
        )
    fields, given, errors = _parse_form(form, creating=False)
    if not errors and _name_taken(session, fields["name"], except_id=channel.id):
        errors.append(f"A channel named {fields['name']} already exists.")
    if (
        not errors
        and session.exec(
            select(Channel.id).where(
                Channel.phone_number_id == fields["phone_number_id"],
                Channel.kind == KIND_CLOUD,
                Channel.id != channel.id,
            )
        ).first()
        is not None
    ):
        errors.append(f"Phone number ID {fields['phone_number_id']} is already connected as another channel.")
    if not errors and fields["api_base_url"] != channel.api_base_url and "access_token" not in given:
        # The stored token only ever goes to the host it was typed for: a new host needs it typed again,
        # so whoever moves the channel proves they hold the token instead of exporting it.
        errors.append(
            "Enter the access token again: the API base URL changed, and the stored token is only ever sent "
            "to the host it was entered for."
        )
    if errors:
        raise ChannelError(" ".join(errors))
    changed = [k for k, v in fields.items() if getattr(channel, k) != v]
    changed += [k for k, v in given.items() if getattr(channel, k) != v]
    for key in changed:
        setattr(channel, key, fields.get(key, given.get(key)))
    if changed:
        channel.updated_at = utcnow()
        session.add(channel)
        audit.record(
            session=session,
            actor=actor,
            action="channel.update",
            target_type="channel",
            target_id=channel.id,
            detail={"name": channel.name, "changed": sorted(changed)},
        )
    return SaveResult(channel, tuple(changed), None)


def disconnect_channel(*, session: Session, actor: User, channel_id: Any) -> DisconnectResult:
    """Stop using a number: campaigns can no longer pick or send through it. Secrets are kept so a
    later successful connection test reconnects it without typing them again."""
    actor = require(session, actor, perm.CHANNELS_MANAGE)
    channel = _channel(session, channel_id)
    if channel.kind == KIND_SANDBOX:
        raise ChannelError("The Sandbox simulator is always available and cannot be disconnected.")
    if channel.status == DISCONNECTED:
        raise ChannelError(f"{channel.name} is already disconnected.")
    active = session.exec(
        select(func.count())
        .select_from(Campaign)
        .where(Campaign.channel_id == channel.id, Campaign.status.in_(_ACTIVE_CAMPAIGN_STATES))
    ).one()
    channel.status, channel.updated_at = DISCONNECTED, utcnow()
    channel.last_error, channel.last_error_detail = "Disconnected by an admin.", ""
    session.add(channel)
    audit.record(
        session=session,
        actor=actor,
        action="channel.disconnect",
        target_type="channel",
        target_id=channel.id,
        detail={"name": channel.name, "active_campaigns": int(active)},
    )
    return DisconnectResult(channel, int(active))


async def _probe(channel: SimpleNamespace) -> tuple[dict, Problem | None]:
    """(phone number info, None) or ({}, problem). Also lists one template page: a wrong WABA id would
    otherwise only show up at the first template sync."""
    async with client_for(channel) as client:
        info = await client.get_phone_number()
        if str(info.get("id") or channel.phone_number_id) != channel.phone_number_id:
            text = f"Meta answered for phone number ID {str(info.get('id'))[:64]}, not {channel.phone_number_id}."
            return info, Problem(f"Meta answered for another phone number ID than {channel.phone_number_id}.", text)
        pages = client.template_pages(limit=1)
        try:
            await pages.__anext__()
        except StopAsyncIteration:
            pass
        except WhatsAppApiError as exc:
            lead = f"The phone number works, but WhatsApp Business Account ID {channel.business_account_id} does not: "
            return info, Problem(lead + public_api_error(exc), lead + describe_api_error(exc))
        finally:
            await pages.aclose()
        return info, None


def test_connection(*, session: Session, actor: User, channel_id: Any) -> ConnectionResult:
    """Ask the Cloud API (or the Sandbox) for the number's details with the stored token; store the
    outcome on the channel: connected, or error with Meta's message."""
    actor = require(session, actor, perm.CHANNELS_MANAGE)
    channel = _channel(session, channel_id)
    facts = connection_facts(channel)
    if not host_allowed(facts.api_base_url):  # stored before the host rule, or the operator's list shrank
        info, problem = (
            {},
            Problem(
                "The API base URL is not an allowed host; edit the channel.",
                f"{facts.api_base_url} is not Meta's Graph host, this install's Sandbox or in HUBCAST_CHANNEL_API_HOSTS: "
                "the access token is not sent there. Edit the channel (and type its token again).",
            ),
        )
    else:
        try:
            info, problem = run_async(lambda: _probe(facts))
        except WhatsAppApiError as exc:
            info, problem = {}, Problem(public_api_error(exc), describe_api_error(exc))
    ok = problem is None
    channel.last_checked_at = utcnow()
    channel.status = CONNECTED if ok else ERROR
    channel.last_error = "" if ok else problem.public[:500]
    channel.last_error_detail = "" if ok else problem.detail[:1000]
    display = str(info.get("display_phone_number") or "")[:32]
    if display:
        channel.display_phone_number = display
    # The business name people see in WhatsApp (Meta's verified name): the message preview shows it. Only
    # when the admin left the channel's display name empty: one they typed is never overwritten.
    verified = " ".join(str(info.get("verified_name") or "").split())[:MAX_DISPLAY_NAME]
    filled = ok and bool(verified) and not channel.display_name
    if filled:
        channel.display_name = verified
    if ok:
        messaging_limit.record_from_phone_info(session, channel, info)
    session.add(channel)
    audit.record(
        session=session,
        actor=actor,
        action="channel.test",
        outcome="ok" if ok else "error",
        target_type="channel",
        target_id=channel.id,
        detail=(
            {"name": channel.name, "error": channel.last_error_detail}
            if not ok
            else {"name": channel.name, **({"display_name_filled": verified} if filled else {})}
        ),
    )
    # The admin who ran the test (channels:manage) reads the host's own words.
    message = str(info.get("verified_name") or channel.display_phone_number or channel.name) if ok else problem.detail
    return ConnectionResult(ok, channel.status, message, channel.display_phone_number)


test_connection.__test__ = False  # type: ignore[attr-defined]  # not a pytest test, despite its name


def channel_for_edit(*, session: Session, actor: User, channel_id: Any) -> dict[str, str]:
    """The edit form's initial values: every setting except secrets, which appear only as set or not."""
    actor = require(session, actor, perm.CHANNELS_MANAGE)
    channel = _channel(session, channel_id)
    if channel.kind == KIND_SANDBOX:
        raise ChannelError(
            "The Sandbox is Hubcast's simulator: its settings match the local Sandbox process and "
            "cannot be edited here."
        )
    out = {
        k: str(getattr(channel, k))
        for k in (
            "id",
            "name",
            "display_name",
            "phone_number_id",
            "business_account_id",
            "api_base_url",
            "api_version",
            "messages_per_second",
        )
    }
    out.update({f"{k}_set": "yes" if getattr(channel, k) else "" for k in _SECRET_FIELDS})
    return out


def channels_overview(*, session: Session, actor: User) -> list[dict]:
    """Channel facts safe to show: secrets appear only as whether they are set; what an API host answered
    (the error detail, possibly a raw response body) only to admins, everyone else reads Hubcast's summary."""
    user = require(session, actor, perm.CHANNELS_VIEW)
    admin = perm.can(user.role, perm.CHANNELS_MANAGE)
    return [
        {
            "id": c.id,
            "name": c.name,
            "kind": "Sandbox" if c.kind == "sandbox" else "WhatsApp Cloud API",
            "sandbox": c.kind == "sandbox",
            "phone": c.display_phone_number,
            "phone_number_id": c.phone_number_id,
            "business_account_id": c.business_account_id,
            "api_base_url": c.api_base_url,
            "api_version": c.api_version,
            "status": c.status,
            "last_error": (c.last_error_detail or c.last_error) if admin else c.last_error,
            "quality": c.quality_rating,  # from Meta's account webhooks (inbound/account_events.py)
            "account_notice": c.account_notice,
            "mps": c.messages_per_second,
            "token_set": bool(c.access_token),
            "secret_set": bool(c.app_secret),
            "verify_set": bool(c.verify_token),
            "checked": fmt_time(c.last_checked_at),
        }
        for c in session.exec(select(Channel).order_by(Channel.name)).all()
    ]
