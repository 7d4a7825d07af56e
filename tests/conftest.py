"""The test suite's root: safe environment defaults, then the shared support loaded as plugins.

Fixtures live in tests/support (see its __init__ for the list); helpers are imported from there as
`from tests.support.x import y`. No test module imports another test module.
"""

from __future__ import annotations

import os

# Before anything of the app is imported (the plugins import it lazily, inside their fixtures).
os.environ.setdefault("HUBCAST_ENV", "test")
os.environ.setdefault("HUBCAST_SECRET_KEY", "test-secret-key-that-is-long-enough-0123456789")
os.environ.setdefault("REFLEX_TELEMETRY_ENABLED", "false")

pytest_plugins = [
    "tests.support.stores",
    "tests.support.reflex_events",
    "tests.support.webhooks",
    "tests.support.e2e",
]
