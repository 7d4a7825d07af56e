"""`make test`: the test layers in three pytest processes at once, each printing its own summary.

Why in parallel: most of the suite's wall time is spent waiting — on subprocesses starting, on the Sandbox's
timed fault windows, on a browser — not computing (one core stays mostly idle during the integration and
hardening layers). The layers share nothing that could collide: each pytest process starts its own embedded
Redis, every test its own SQLite file and ports, and the browser layers build the front end in folders of
their own (tests/support/e2e.py, tests/topology/harness.py). Tests that measure a rate under load already
judge it against the load they measured, so a busier machine does not fail them.

    python tests/run_layers.py                  # what `make test` runs (after lint)
    python tests/run_layers.py -- -x            # extra pytest arguments go to every stream

Each stream writes test-artifacts/layers-<name>.log; its last lines (slowest tests, short summary) are
printed when it ends, the whole log when it failed. Exit status: 0 when every stream passed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"

# Each stream takes 7-8 minutes alone on the 2-core machine (one after the other: 22.5 min, junit of 2026-12-07).
STREAMS: dict[str, list[str]] = {
    "integration": ["tests/unit", "tests/integration"],
    "hardening": ["tests/hardening"],
    "browser": ["tests/e2e", "tests/topology"],
}


def main(argv: list[str]) -> int:
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    ARTIFACTS.mkdir(exist_ok=True)
    started = time.monotonic()
    running: dict[str, tuple[subprocess.Popen, Path]] = {}
    for name, paths in STREAMS.items():
        log = ARTIFACTS / f"layers-{name}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "pytest", *paths, "-q", "--durations=15", "-p", "no:cacheprovider", *extra],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        running[name] = (proc, log)
        print(f"layers: {name} ({' '.join(paths)}) started, log {log.relative_to(ROOT)}", flush=True)

    failed: list[str] = []
    try:
        while running:
            for name, (proc, log) in list(running.items()):
                if proc.poll() is None:
                    continue
                del running[name]
                minutes = (time.monotonic() - started) / 60
                text = log.read_text(errors="replace")
                lines = text.splitlines()
                status = "passed" if proc.returncode == 0 else f"FAILED (exit {proc.returncode})"
                print(f"\n===== layers: {name} {status} after {minutes:.1f} min =====", flush=True)
                if proc.returncode == 0:
                    print("\n".join(lines[-40:]), flush=True)
                else:
                    failed.append(name)
                    print(text, flush=True)
            time.sleep(1)
    except KeyboardInterrupt:
        for proc, _ in running.values():
            proc.terminate()
        raise
    total = (time.monotonic() - started) / 60
    print(f"\nlayers: {len(STREAMS) - len(failed)} of {len(STREAMS)} streams passed in {total:.1f} min", flush=True)
    if failed:
        print(f"layers: failed: {', '.join(failed)}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
