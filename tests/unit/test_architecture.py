"""The arrows of the architecture point one way only (README, "Layout"): every import-linter contract in
pyproject.toml (layers components → state → services → whatsapp → domain, state without the database
layer, a pure domain, no Reflex below state, no cycles between service subsystems) is kept.

`lint-imports` is run as `make lint` runs it, in a process of its own (it imports nothing of the app, it
reads the source), so an upward or cyclic import fails `make test` with the contract and the import chain.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_import_linter_contract_is_kept():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    command = [str(lint_imports)] if lint_imports.exists() else ["lint-imports"]
    result = subprocess.run([*command, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=240)
    report = result.stdout + result.stderr
    assert "Contracts: " in report and " broken." in report, report[-4000:]  # it ran and found the contracts
    assert result.returncode == 0, report[-6000:]
