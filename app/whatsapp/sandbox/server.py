"""Serve an ASGI app: with uvicorn when it is installed, else with granian (a Reflex dependency, so
always present where Hubcast is) in its embedded mode, inside this process's event loop."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from typing import Any

log = logging.getLogger(__name__)


def serve(app: Any, host: str, port: int, *, log_level: str = "warning") -> None:
    try:
        import uvicorn
    except ImportError:
        uvicorn = None
    if uvicorn is not None:
        uvicorn.run(app, host=host, port=port, log_level=log_level, lifespan="on", access_log=False)
        return
    asyncio.run(_serve_granian(app, host, port, log_level))


async def _serve_granian(app: Any, host: str, port: int, log_level: str) -> None:
    from granian.constants import Interfaces
    from granian.log import LogLevels
    from granian.server.embed import Server

    server = Server(
        app, address=host, port=port, interface=Interfaces.ASGI, log_level=LogLevels(log_level), backlog=2048
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, server.stop)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows
            pass
    await server.serve()
    # Let granian's Rust threads wind down while Python is still fully alive: without this pause,
    # a thread occasionally calls back into a finalising interpreter and the process aborts.
    await asyncio.sleep(0.3)
    gc.collect()
