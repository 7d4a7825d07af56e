"""Machine load seen during a test phase: throughput bounds loosen only when the machine really was overloaded.

Two readings, sampled in a thread: the 1-minute load average (slow: a few seconds of starvation hardly move
it) and Linux's CPU pressure (`/proc/pressure/cpu`, "some": the share of wall time during which at least one
runnable task waited for a CPU). The second sees what breaks a 1-second rate window: a Sandbox or a worker
not scheduled for a fifth of a second, which then handles a queue of requests at once.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

PRESSURE_FILE = Path("/proc/pressure/cpu")
# A process starved for 100 ms shifts 100 ms of sends into the next window: 10% of a second is where a 1-s
# window stops reading the sender's pace and starts reading the scheduler's.
STARVED_SHARE = 0.10


def cpu_stall_us() -> int | None:
    """Microseconds, since boot, during which some runnable task waited for a CPU (None without PSI)."""
    try:
        for line in PRESSURE_FILE.read_text().splitlines():
            if line.startswith("some "):
                return int(line.rsplit("total=", 1)[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


class PeakLoad:
    """Samples the load average and the CPU pressure every `interval` seconds in a thread.

    `peak` is the highest 1-minute load average seen; `peak_cpu_stall` the highest share of an interval
    during which some task waited for a CPU (None where the kernel has no pressure accounting).
    """

    def __init__(self, interval: float = 1.0):
        self.interval = interval
        self.peak = os.getloadavg()[0]
        self.peak_cpu_stall: float | None = None
        self._last_stall = cpu_stall_us()
        self._last_at = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="peak-load")

    def _sample(self) -> None:
        self.peak = max(self.peak, os.getloadavg()[0])
        stall, at = cpu_stall_us(), time.monotonic()
        if stall is not None and self._last_stall is not None and at > self._last_at:
            share = (stall - self._last_stall) / 1e6 / (at - self._last_at)
            self.peak_cpu_stall = max(self.peak_cpu_stall or 0.0, min(1.0, share))
        self._last_stall, self._last_at = stall, at

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self) -> PeakLoad:
        self._thread.start()
        return self

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sample()
        return self.peak

    def __enter__(self) -> PeakLoad:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def overloaded(self) -> bool:
        """More runnable work than two per core, or some task kept waiting for a CPU for a tenth of a second
        (in one sampling interval): a stalled process then stamps, or sends, a queue of requests at once."""
        starved = self.peak_cpu_stall is not None and self.peak_cpu_stall >= STARVED_SHARE
        return starved or self.peak >= 2 * (os.cpu_count() or 1)

    def saturated(self) -> bool:
        """Four runnable tasks or more per core and some task waiting for a CPU nearly all the time: the
        scheduler then runs each process a slice in turn, and one can wait several 100-ms rounds (seen in CI:
        load 13.9 on 2 cores, a CPU-pressure share of 1.0, 260 stamps in one second at a 200 cap while the
        five-second window held 1,011 of 1,050)."""
        stalled = self.peak_cpu_stall is not None and self.peak_cpu_stall >= 0.9
        return stalled and self.peak >= 4 * (os.cpu_count() or 1)

    def one_second_bound(self, *, busy: bool = False) -> float:
        """How far a sliding 1-s window of arrival stamps may read above the cap: 5% on a quiet machine, 25%
        overloaded (or `busy` by the caller's own rule), 50% saturated. Five-second windows need no such
        allowance: a stall shifts sends by a fraction of a second, which five seconds absorb."""
        if self.saturated():
            return 1.5
        return 1.25 if busy or self.overloaded() else 1.05

    def describe(self) -> dict[str, float | None]:
        stall = None if self.peak_cpu_stall is None else round(self.peak_cpu_stall, 2)
        return {"peak_load_1m": round(self.peak, 1), "peak_cpu_stall_share": stall}
