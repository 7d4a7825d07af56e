"""`python -m app.whatsapp.sandbox` / `hubcast sandbox`: run the local Cloud API simulator."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from .config import SandboxConfig, parse_args


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    defaults = SandboxConfig()
    for secret in SandboxConfig.SECRETS:
        if getattr(config, secret) == getattr(defaults, secret):
            logging.getLogger("app.whatsapp.sandbox").warning(
                "sandbox: using the built-in %s; pass --%s (or HUBCAST_SANDBOX_%s) to match your channel",
                secret,
                secret.replace("_", "-"),
                secret.upper(),
            )
    from .app import create_app
    from .server import serve

    try:
        app = create_app(config)
    except (OSError, ValueError) as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return 2
    print(
        f"Sandbox: Cloud API on http://{config.host}:{config.port}/{'{version}'} "
        f"(phone number id {config.phone_number_id}, WABA {config.waba_id}); "
        f"webhooks to {config.webhook_url or '(nowhere)'}",
        flush=True,
    )
    try:
        serve(app, config.host, config.port)
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"sandbox: cannot serve on {config.host}:{config.port}: {exc}", file=sys.stderr)
        return 1
    return 0
