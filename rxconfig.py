"""Reflex configuration. Origins are restricted to the app's own URL (Reflex defaults to "*").

Every value comes from app.settings (the one place that reads the environment)."""

import reflex as rx

from app.settings import load_settings

_settings = load_settings()  # as the environment is now (not a copy cached earlier in this process)
_origins = {
    _settings.public_url,
    f"http://localhost:{_settings.port}",
    f"http://127.0.0.1:{_settings.port}",
    *_settings.extra_origins,
}

config = rx.Config(
    app_name="app",
    frontend_port=_settings.port,
    backend_port=_settings.port,
    api_url=_settings.api_url,
    deploy_url=_settings.public_url,
    cors_allowed_origins=sorted(_origins),
    telemetry_enabled=False,
    # With a Redis, Reflex keeps per-tab UI state there: it survives a backend restart and is shared
    # by several backend processes. Without one (bare `reflex run` in development) it stays on disk.
    redis_url=_settings.redis_url,
    show_built_with_reflex=False,
    plugins=[
        rx.plugins.RadixThemesPlugin(
            theme=rx.theme(accent_color="grass", gray_color="slate", radius="medium", appearance="inherit")
        )
    ],
    # A sitemap would only list pages behind a login.
    disable_plugins=[rx.plugins.SitemapPlugin],
)
