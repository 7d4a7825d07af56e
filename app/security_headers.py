"""Security headers on every HTTP response of the backend (issue 13 item 12, ASVS 14.4), built with the
`secure` package and applied by its ASGI middleware; `hubcast web` serves the compiled front end from
the same app, so pages, assets, `/_event`, `/_upload`, `/webhooks`, `/healthz` and exports all get them.

The Content-Security-Policy is what the Reflex 0.10 front end needs and no more:
- scripts from the app itself, plus 'unsafe-inline' (the compiled pages carry inline boot scripts: the
  colour-mode script and React Router's context, different per build) and 'unsafe-eval' (Reflex runs
  `rx.call_script` and its event callbacks through `eval`);
- styles inline (Emotion and Radix set them at run time); images and fonts from the app or data: URLs;
- connections to the app and to the websocket origin the browser is given (HUBCAST_API_URL, else the
  public URL; HUBCAST_EXTRA_ORIGINS too);
- no plugins, no <base> tricks, forms post only here, and no framing at all (frame-ancestors 'none',
  with X-Frame-Options DENY for old browsers).
HSTS is sent only when the public URL is https (a plain-http laptop must not pin itself to https).
A websocket's accept (the 101 answer) carries the same headers: the middleware of `secure` handles HTTP
scopes only, so `SecurityHeaders` adds them to `websocket.accept` too.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import secure
from secure.middleware import SecureASGIMiddleware

from app.settings import Settings, get_settings

HSTS_SECONDS = 2 * 365 * 24 * 3600


def _ws_origin(url: str) -> str:
    parts = urlsplit(url)
    if not parts.netloc:
        return ""
    return f"{'wss' if parts.scheme == 'https' else 'ws'}://{parts.netloc}"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else ""


def content_security_policy(settings: Settings) -> secure.ContentSecurityPolicy:
    connect = ["'self'"]
    for url in (settings.api_url or settings.public_url, settings.public_url, *settings.extra_origins):
        for origin in (_origin(url), _ws_origin(url)):
            if origin and origin not in connect:
                connect.append(origin)
    return (
        secure.ContentSecurityPolicy()
        .default_src("'self'")
        .script_src("'self'", "'unsafe-inline'", "'unsafe-eval'")
        .style_src("'self'", "'unsafe-inline'")
        .img_src("'self'", "data:", "blob:")
        .font_src("'self'", "data:")
        .connect_src(*connect)
        .worker_src("'self'", "blob:")
        .object_src("'none'")
        .base_uri("'self'")
        .form_action("'self'")
        .frame_ancestors("'none'")
    )


def build_secure(settings: Settings | None = None) -> secure.Secure:
    settings = settings or get_settings()
    https = settings.public_url.lower().startswith("https://")
    return secure.Secure(
        csp=content_security_policy(settings),
        hsts=secure.StrictTransportSecurity().max_age(HSTS_SECONDS).include_subdomains() if https else None,
        xcto=secure.XContentTypeOptions().nosniff(),
        xfo=secure.XFrameOptions().deny(),
        referrer=secure.ReferrerPolicy().strict_origin_when_cross_origin(),
        coop=secure.CrossOriginOpenerPolicy().same_origin(),
        permissions=secure.PermissionsPolicy().geolocation().camera().microphone().payment().usb(),
    )


class SecurityHeaders(SecureASGIMiddleware):
    """`secure`'s ASGI middleware, and the same headers on a websocket's accept."""

    async def __call__(self, scope, receive, send) -> None:
        if scope.get("type") != "websocket":
            await super().__call__(scope, receive, send)
            return
        extra = [(name.encode("ascii"), value.encode("latin-1")) for name, value in self.secure.headers.items()]

        async def send_with_headers(message) -> None:
            if message.get("type") == "websocket.accept":
                names = {name.lower() for name, _ in extra}
                kept = [(k, v) for k, v in message.get("headers") or [] if k.lower() not in names]
                message = {**message, "headers": kept + extra}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def security_headers(app):
    """The api_transformer for rx.App: wraps the whole backend (Reflex's routes and the mounted front end)."""
    return SecurityHeaders(app, secure=build_secure())
