"""End-to-end layer: the harness (the built app, Chromium, `page`, `login_as`, ...) is the plugin
tests/support/e2e.py; here only what applies to this folder: the long per-test timeout and the outcome
kept on each test item (a failing test's pages are screenshotted by the `new_page` fixture)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.e2e import E2E_TEST_TIMEOUT_S


def pytest_collection_modifyitems(config, items):
    e2e_dir = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(e2e_dir) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(E2E_TEST_TIMEOUT_S))


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
    # The security-headers attack test (issue 13 item 12) lives here because it needs the built server; its
    # outcome goes in the hardening record like every tests/hardening case (tests/hardening/conftest.py).
    if item.module.__name__.endswith("test_security_headers") and (
        call.when == "call" or (call.when == "setup" and call.excinfo is not None)
    ):
        from tests.support import hardening

        hardening.record(
            "test", item.nodeid, ok=report.passed, skipped=False, phase=call.when, duration_s=round(call.duration, 2)
        )
