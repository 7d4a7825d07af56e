"""Machine load seen during a test phase: throughput bounds loosen only when the machine really was overloaded."""

from __future__ import annotations

import os
import threading


class PeakLoad:
    """Samples the 1-minute load average every `interval` seconds in a thread; `peak` is the highest seen."""

    def __init__(self, interval: float = 1.0):
        self.interval = interval
        self.peak = os.getloadavg()[0]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="peak-load")

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, os.getloadavg()[0])

    def start(self) -> PeakLoad:
        self._thread.start()
        return self

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(timeout=5)
        self.peak = max(self.peak, os.getloadavg()[0])
        return self.peak

    def __enter__(self) -> PeakLoad:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def overloaded(self) -> bool:
        """More runnable work than two per core: a stalled process then stamps a queue of requests at once."""
        return self.peak >= 2 * (os.cpu_count() or 1)
