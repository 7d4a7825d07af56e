"""Hardening tests share the root fixtures (tests/support); this adds the run's record file
(tests/support/hardening.py) and every hardening test's outcome in it."""

from __future__ import annotations

import pytest

from tests.support import hardening


@pytest.fixture(scope="session", autouse=True)
def _fresh_hardening_records():
    hardening.reset()
    yield


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_makereport(item, call):
    # Every test's outcome goes in the record, so a failed case is reported as not survived.
    if call.when == "call" or (call.when == "setup" and call.excinfo is not None):
        skipped = call.excinfo is not None and call.excinfo.errisinstance(pytest.skip.Exception)
        hardening.record(
            "test",
            item.nodeid,
            ok=call.excinfo is None,
            skipped=skipped,
            phase=call.when,
            duration_s=round(call.duration, 2),
        )
