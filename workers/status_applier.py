"""The loop behind `hubcast applier`: applies stored webhook statuses in a process of its own.

By default each web process applies the statuses it receives (`app.http_api.StatusApplier`). On a busy
deployment that shares one core between receiving webhooks and applying them; this process takes the
applying over (the web processes stand aside while its Redis key is fresh, `status_applier.DedicatedWatch`)
and gives it a core. Stopping it (SIGTERM/SIGINT) finishes the pass under way, withdraws the key, and the
web processes apply again at once; a killed one is replaced by them within `DEDICATED_TTL_S`.
"""

from __future__ import annotations

import logging
import signal
import threading

from app.services.inbound import status_applier

log = logging.getLogger(__name__)


def run_status_applier(stop: threading.Event | None = None) -> None:
    """Apply passes until `stop` is set (or SIGTERM/SIGINT when run from the main thread)."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    pacer = status_applier.Pacer()
    log.info("status applier: started")
    try:
        while not stop.is_set():
            applied = 0
            try:
                status_applier.announce_dedicated()
                if pacer.analyze_due():
                    status_applier.refresh_statistics()
                applied = pacer.run()
            except Exception:  # a database or Redis hiccup: the events stay stored, the next pass retries
                log.exception("status applier pass failed")
                stop.wait(1.0)
                continue
            if not pacer.after(applied):
                stop.wait(status_applier.INTERVAL_S)
    finally:
        status_applier.withdraw_dedicated()
        log.info("status applier: stopped")
