"""What each process of a `hubcast run` install is doing, as the supervisor last said.

The supervisor (app/supervisor.py) is the only writer: it rewrites a small JSON file under the data
directory (`run/status.json`) atomically (a temporary file, then `os.replace`) whenever a child starts,
crashes, waits to be restarted or becomes ready again. Readers (`/healthz`, the campaign pages' banner)
only read it, so they keep working while Redis itself is restarting, which a status kept in Redis
could not do.

A file left behind by a supervisor that no longer runs (killed, or the machine rebooted) is ignored:
it names the supervisor's pid, which must still be alive. Without a supervisor (the web app started by
`reflex run` alone, or by the e2e harness) nothing is known about the worker and nothing is claimed.

States of a component: "starting" (first start, not ready yet), "ok", "restarting" (it exited
unexpectedly; a new one is on its way), "stopped" (the supervisor gave up on it or is shutting down).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

STARTING, OK, RESTARTING, STOPPED = "starting", "ok", "restarting", "stopped"
STATUS_NAME = Path("run") / "status.json"


def status_path(data_dir: Path | None = None) -> Path:
    if data_dir is None:
        from app.settings import get_settings

        data_dir = get_settings().data_dir
    return Path(data_dir) / STATUS_NAME


def write_status(path: Path, children: dict[str, dict[str, Any]], *, supervisor_pid: int | None = None) -> None:
    """Replace the status file in one step: a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"supervisor_pid": supervisor_pid or os.getpid(), "updated_at": time.time(), "children": children}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(body, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def remove_status(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, under another user
        return True
    return True


def read_status(path: Path | None = None) -> dict[str, Any] | None:
    """The supervisor's last word, or None when no live supervisor wrote one."""
    path = path or status_path()
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    pid = body.get("supervisor_pid")
    if not isinstance(pid, int) or not _pid_alive(pid):
        return None
    return body


def component_states(path: Path | None = None) -> dict[str, str]:
    """{"worker": "ok", "sandbox": "restarting", ...} for each supervised child; {} without a supervisor."""
    body = read_status(path)
    if body is None:
        return {}
    return {name: str(child.get("state", "")) for name, child in (body.get("children") or {}).items()}


def worker_paused(path: Path | None = None) -> bool:
    """True while a supervised worker is not running: campaigns cannot send until it is back."""
    state = component_states(path).get("worker")
    return state is not None and state != OK
