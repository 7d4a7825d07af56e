"""Plain HTTP routes served beside the Reflex app on the same port (Starlette).

- `/healthz` lets operators, the `hubcast run` supervisor and tests know the backend is up and can
  reach its database and Redis, and what the supervisor says of the worker and the Sandbox (app/health.py);
  it starts the status applier, so a restart replays what a crash left.
- `GET /webhooks/whatsapp` answers Meta's subscription check; `POST /webhooks/whatsapp` takes signed
  status and message webhooks: verify the signature on the raw bytes, store, answer 200. Applying the
  statuses to recipients happens in batches in a background loop (see `StatusApplier`).
- `GET /exports/campaigns/{id}.csv` streams a campaign's results to a signed-in user (session cookie
  checked on the server, `campaigns:view`).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from dataclasses import dataclass
from urllib.parse import quote

from sqlalchemy import select, text
from sqlmodel import Session
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from app import health, metrics_store
from app.db import get_engine, session_scope
from app.domain import permissions as perm
from app.metrics import metrics_endpoint
from app.models import Channel
from app.redis_conn import get_redis
from app.services.accounts import auth, cookies
from app.services.campaigns import results as campaign_results
from app.services.channels.channels import WEBHOOK_PATH
from app.services.inbound import account_events, status_applier, webhook_ingest
from app.upload_limit import UploadSizeLimit
from app.whatsapp import signature
from app.whatsapp.webhooks import MalformedWebhook, check_shape, parse_webhook

log = logging.getLogger(__name__)

CAMPAIGN_EXPORT_ROUTE = "/exports/campaigns/{campaign_id:int}.csv"
MAX_WEBHOOK_BYTES = 3 * 1024 * 1024  # Meta's payloads are a few KB; a Sandbox batch of 100 statuses ~50 KB
SESSION_COOKIE = cookies.SESSION_COOKIE  # the same cookie state.base.AppState issues at login


def campaign_export_url(campaign_id: int | str) -> str:
    """The link to a campaign's results as CSV (the page links to it; this module serves it)."""
    return CAMPAIGN_EXPORT_ROUTE.replace("{campaign_id:int}", str(int(campaign_id)))


# --- status applier -------------------------------------------------------------------------------


class StatusApplier:
    """Applies stored webhook events in batches, in the web process, on its event loop.

    Why a loop here rather than an RQ job: the stored events table already is the durable queue (an
    acknowledged event is a committed row; `applied_at` marks it done), so a queue would only add a
    Redis hop and a job per batch. Applying where the events arrive keeps the delay from webhook to
    browser count well under the 2-second target, and batches (`status_applier.run_pass`) are what make
    thousands of statuses per second possible: one transaction per event tops out near 3,700/s on SQLite.

    Started by the first webhook or `/healthz` poll in a process; runs every INTERVAL_S while there is
    work (events whose wamid is not known yet are retried each pass) and ends after IDLE_EXIT_S
    without any. A crash only leaves unapplied rows, which the next loop applies first. Several web
    processes may each run one: applying is idempotent. While a dedicated `hubcast applier` runs
    (`status_applier.DedicatedWatch`), this loop stands aside, and takes over again if that one stops.
    """

    INTERVAL_S = status_applier.INTERVAL_S
    IDLE_EXIT_S = 120.0

    def __init__(self) -> None:
        self._task: asyncio.Task | None = None
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dedicated = status_applier.DedicatedWatch()
        self.standing_aside = False  # the last loop turn saw a dedicated applier and left applying to it
        self.turns = 0  # loop turns so far (/healthz shows both: operators see who applies)

    def kick(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new server loop (tests start several): start afresh on it
            self._loop, self._task, self._wake = loop, None, asyncio.Event()
        assert self._wake is not None
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run(self._wake), name="hubcast-status-applier")

    async def _run(self, wake: asyncio.Event) -> None:
        idle_since = time.monotonic()
        pacer = status_applier.Pacer()
        while True:
            wake.clear()
            applied = 0
            self.standing_aside = self._dedicated.alive()
            if not self.standing_aside:
                try:
                    if pacer.analyze_due():
                        await asyncio.to_thread(status_applier.refresh_statistics)
                    applied = await asyncio.to_thread(pacer.run)
                except Exception:  # the events stay unapplied and are retried next pass
                    log.exception("status applier pass failed")
            self.turns += 1
            backlog = pacer.after(applied)
            if applied:
                idle_since = time.monotonic()
                if backlog:
                    continue  # bigger batches, the next one at once
            elif time.monotonic() - idle_since > self.IDLE_EXIT_S:
                return
            try:
                await asyncio.wait_for(wake.wait(), timeout=self.INTERVAL_S)
                await asyncio.sleep(0.05)  # woken by a webhook: let its neighbours land, then batch
            except TimeoutError:
                pass


applier = StatusApplier()


# --- routes ---------------------------------------------------------------------------------------


async def healthz(_request: Request) -> JSONResponse:
    """Each component's state: {"status", "web", "database", "redis", and under `hubcast run` "worker",
    "sandbox"}, and who applies received statuses ("status_applier": "web" or "dedicated"). 200 while the
    web app can serve, even if another part is down or restarting ("status": "degraded"); 503 only when it
    cannot (its database is unreachable)."""
    checks: dict[str, str] = {"web": "ok"}
    try:
        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # report, don't crash: this endpoint exists to say what is wrong
        checks["database"] = f"error: {type(exc).__name__}"
    supervised = health.component_states()  # {} when not started by `hubcast run`
    try:
        get_redis().ping()
        checks["redis"] = "ok"
    except Exception as exc:
        restarting = supervised.get("redis") in (health.RESTARTING, health.STARTING)
        checks["redis"] = health.RESTARTING if restarting else f"error: {type(exc).__name__}"
    for name, state in supervised.items():
        if name not in checks:
            checks[name] = state
    serving = checks["database"] == "ok"
    if not serving:
        checks["web"] = "error: no database"
    healthy = all(v == "ok" for v in checks.values())
    if serving:
        applier.kick()
    # Who applies received statuses: this process, or a dedicated `hubcast applier` it stands aside for.
    applying = {"status_applier": "dedicated" if applier.standing_aside else "web", "applier_turns": applier.turns}
    return JSONResponse(
        {"status": "ok" if healthy else "degraded", **checks, **applying}, status_code=200 if serving else 503
    )


@dataclass(frozen=True)
class _ChannelKeys:
    id: int
    phone_number_id: str
    app_secret: str
    verify_token: str


_KEYS_TTL_S = 5.0
_KEYS_RETRY_AFTER_S = 1.0
_keys_cache: dict[str, tuple[float, list[_ChannelKeys]]] = {}


def _channel_keys(*, fresh: bool = False) -> list[_ChannelKeys]:
    """Every channel's ids and secrets (decrypted in Python; a handful of rows), cached a few seconds.

    Reading and decrypting them on every POST cost more than storing 100 statuses; a changed secret
    is picked up within `_KEYS_TTL_S` (or at once on a signature mismatch, see `_authenticate`)."""
    url = str(get_engine().url)
    cached = _keys_cache.get(url)
    if cached and not fresh and time.monotonic() - cached[0] < _KEYS_TTL_S:
        return cached[1]
    with Session(get_engine()) as session:
        rows = session.execute(
            select(Channel.id, Channel.phone_number_id, Channel.app_secret, Channel.verify_token)
        ).all()
    keys = [_ChannelKeys(r.id, r.phone_number_id or "", r.app_secret or "", r.verify_token or "") for r in rows]
    _keys_cache[url] = (time.monotonic(), keys)
    return keys


def _keys_age() -> float:
    cached = _keys_cache.get(str(get_engine().url))
    return time.monotonic() - cached[0] if cached else float("inf")


async def verify_subscription(request: Request) -> Response:
    """Meta's GET check: echo hub.challenge when hub.verify_token is one of our channels' tokens."""
    params = request.query_params
    given = params.get("hub.verify_token", "")
    challenge = params.get("hub.challenge", "")
    if params.get("hub.mode") != "subscribe" or not given or not challenge or len(challenge) > 256:
        return PlainTextResponse("Forbidden", status_code=403)
    keys = await run_in_threadpool(lambda: _channel_keys(fresh=True))  # rare: always read the current tokens
    matched = False
    for key in keys:  # compare with every token, in constant time each: no early exit on a match
        if key.verify_token:
            matched |= hmac.compare_digest(key.verify_token.encode(), given.encode())
    if not matched:
        return PlainTextResponse("Forbidden", status_code=403)
    return PlainTextResponse(challenge)


def _authenticate(raw: bytes, header: str | None) -> tuple[dict, dict[str, int]] | None:
    """(payload, {phone_number_id: channel id} of the channels whose app secret signed these bytes), or
    None when no channel's secret did. Only those numbers may be named by the body's items (issue 13):
    a secret vouches for its own channel's numbers, never for another channel's."""
    if not header:
        return None
    keys = _channel_keys()
    verified = [k for k in keys if k.app_secret and signature.verify(raw, header, k.app_secret)]
    if not verified and _keys_age() > _KEYS_RETRY_AFTER_S:  # a channel added or its secret changed just now?
        keys = _channel_keys(fresh=True)
        verified = [k for k in keys if k.app_secret and signature.verify(raw, header, k.app_secret)]
    if not verified:
        return None
    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, or nested past the decoder's stack: malformed (400)
        payload = None
    # Several numbers can share one Meta app (one secret): attribute each item by its phone number id.
    # An item naming a number none of these channels owns is refused (`store_events`), not credited.
    owned = {k.phone_number_id: k.id for k in verified if k.phone_number_id}
    return payload, owned


def _store(raw: bytes, header: str | None) -> webhook_ingest.StoreResult | None:
    authenticated = _authenticate(raw, header)
    if authenticated is None:
        return None
    payload, owned = authenticated
    try:
        if payload is None:
            raise MalformedWebhook("the body is not JSON (or nests too deeply to read)")
        check_shape(payload)
        events = parse_webhook(payload)
    except MalformedWebhook as exc:  # signed, but not a webhook we can read: 400, kept as rejected
        with Session(get_engine(), expire_on_commit=False) as session, webhook_ingest.one_writer(session):
            result = webhook_ingest.record_rejected(session, raw, str(exc), sorted(set(owned.values())))
            session.commit()
        return result
    with Session(get_engine(), expire_on_commit=False) as session, webhook_ingest.one_writer(session):
        result = webhook_ingest.store_events(session, events, owned.get)
        account_events.apply_account_changes(session, payload, owned)  # template / account / preference fields
        session.commit()
    metrics_store.record_webhook_received(get_redis(), result.statuses, result.messages)
    return result


async def _body_within(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it passes `limit` bytes: a chunked body (no Content-Length) is read
    piece by piece and never held beyond the limit (issue 13 item 2c; `request.body()` would buffer it all)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large() -> Response:
    # Connection: close, so the server does not read the rest of the body to keep the connection alive.
    return PlainTextResponse("Payload too large", status_code=413, headers={"Connection": "close"})


async def receive_webhook(request: Request) -> Response:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_WEBHOOK_BYTES:
        return _too_large()
    raw = await _body_within(request, MAX_WEBHOOK_BYTES)
    if raw is None:
        return _too_large()
    result = await run_in_threadpool(_store, raw, request.headers.get(signature.HEADER))
    if result is None:
        return PlainTextResponse("Invalid signature", status_code=401)
    if result.rejected:
        return PlainTextResponse(f"Malformed webhook: {result.rejected}"[:300], status_code=400)
    if result.statuses:
        applier.kick()
    return PlainTextResponse("OK")


async def export_campaign_csv(request: Request) -> Response:
    campaign_id = request.path_params["campaign_id"]
    secret = request.cookies.get(SESSION_COOKIE, "")

    def prepare():
        with session_scope() as session:
            user = auth.resolve_session(session=session, secret=secret)
            if user is None:
                return 401, None, None
            try:
                name = campaign_results.export_filename(session=session, actor=user, campaign_id=campaign_id)
            except perm.PermissionDenied:
                return 403, None, None
            except campaign_results.CampaignNotFound:
                return 404, None, None
            return 200, user, name

    status, user, filename = await run_in_threadpool(prepare)
    if status != 200:
        messages = {
            401: "Please sign in.",
            403: "You don't have permission to do that.",
            404: "This campaign does not exist.",
        }
        return PlainTextResponse(messages[status], status_code=status)

    def chunks():
        with Session(get_engine()) as session:
            yield "\ufeff"  # a BOM, so spreadsheet apps read the UTF-8 names correctly
            yield from campaign_results.export_csv(session=session, actor=user, campaign_id=campaign_id)

    return StreamingResponse(
        chunks(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": attachment_disposition(filename), "Cache-Control": "no-store"},
    )


def attachment_disposition(filename: str) -> str:
    """RFC 6266 / RFC 8187: an ASCII fallback in `filename=` for old clients, the real name (any script)
    percent-encoded as UTF-8 in `filename*=`. A header is Latin-1, so a name like "日本のセール" in
    `filename=` alone was a 500 (issue 13 item 15); encoded, no character can break out of the header."""
    fallback = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_.") else "_" for ch in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def build_http_api() -> Starlette:
    # Reflex mounts its own app (pages, websocket, /_upload) inside this one, so this middleware
    # guards Reflex's upload endpoint too.
    return Starlette(
        middleware=[Middleware(UploadSizeLimit)],
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            Route(WEBHOOK_PATH, verify_subscription, methods=["GET"]),
            Route(WEBHOOK_PATH, receive_webhook, methods=["POST"]),
            Route(CAMPAIGN_EXPORT_ROUTE, export_campaign_csv, methods=["GET"]),
        ],
    )
