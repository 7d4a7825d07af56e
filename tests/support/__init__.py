"""What the tests share, in one place (no test module imports another test module).

Plugins (loaded by `pytest_plugins` in tests/conftest.py; they define fixtures and import the app lazily,
so a module being edited elsewhere never breaks the collection of unrelated tests):

- `stores`        the real database (a fresh migrated SQLite file per test, or `DATABASE_URL`) and Redis
                  (embedded, or `REDIS_URL`): `database_url`, `session`, `redis_url`, `redis_client`,
                  `private_redis` (a redis-server of one test's own, to restart or flush), `make_user`.
- `reflex_events` the app's real Reflex event path in-process: `reflex_backend`, `world`.
- `webhooks`      `no_background`, `webhook_world` for the webhook route tests.
- `e2e`           the built app served by `reflex run --env prod`, Chromium through Playwright.

Helpers, imported as `from tests.support.x import y`:

- `wait`          `wait_until(condition, timeout=..., message=...)`, the one way a test waits.
- `sandbox`       the WhatsApp Sandbox as a process (`run_sandbox`, `Sandbox`), `free_port`, `max_per_window`.
- `factories`     channels, templates, contact lists, campaigns (`make_sandbox_campaign`), row readers.
- `processes`     worker processes, in-process burst runs, the app's HTTP routes as a process, a TCP proxy.
- `reflex_client` the crafted browser tab (`CraftedClient`), `event_name`, database fingerprints.
- `handler_matrix` every State handler × every caller, swept once per run (`handler_sweep`).
- `webhook_payloads` signed WhatsApp webhook envelopes and readers.
- `hardening`     the hardening report's records (`record`) and a fault's message figures (`figures`).
"""
