"""Reflex configuration. Origins are restricted to the app's own URL (Reflex defaults to "*")."""

import os

import reflex as rx

_port = int(os.environ.get("PORT", "8000"))
_public_url = os.environ.get("HUBCAST_PUBLIC_URL", f"http://localhost:{_port}").rstrip("/")
_origins = {_public_url, f"http://localhost:{_port}", f"http://127.0.0.1:{_port}"}
_origins.update(o.strip().rstrip("/") for o in os.environ.get("HUBCAST_EXTRA_ORIGINS", "").split(",") if o.strip())

config = rx.Config(
    app_name="app",
    frontend_port=_port,
    backend_port=_port,
    api_url=os.environ.get("HUBCAST_API_URL", _public_url),
    deploy_url=_public_url,
    cors_allowed_origins=sorted(_origins),
    telemetry_enabled=False,
    # With a Redis, Reflex keeps per-tab UI state there: it survives a backend restart and is shared
    # by several backend processes. Without one (bare `reflex run` in development) it stays on disk.
    redis_url=os.environ.get("REDIS_URL") or None,
    show_built_with_reflex=False,
    plugins=[
        rx.plugins.RadixThemesPlugin(
            theme=rx.theme(accent_color="grass", gray_color="slate", radius="medium", appearance="inherit")
        )
    ],
    # A sitemap would only list pages behind a login.
    disable_plugins=[rx.plugins.SitemapPlugin],
)
