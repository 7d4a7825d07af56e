"""The Sandbox: a real local HTTP server that behaves like the WhatsApp Cloud API (see `app.py` for
the endpoints and the behaviours reproduced, `webhooks.py` for the status timeline).

    python -m app.whatsapp.sandbox --port 8001 --webhook-url http://127.0.0.1:8000/webhooks/whatsapp \
        --access-token ... --app-secret ...
"""

from .cli import main
from .config import SandboxConfig, parse_args

__all__ = ["SandboxConfig", "create_app", "main", "parse_args"]


def create_app(config: SandboxConfig | None = None):
    """The Starlette app (imported lazily: starlette is only needed when the Sandbox runs)."""
    from .app import create_app as _create_app

    return _create_app(config)
