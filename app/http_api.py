"""Plain HTTP routes served beside the Reflex app on the same port (Starlette).

`/healthz` lets operators, the `hubcast run` supervisor and tests know the backend is up and can
reach its database and Redis. The WhatsApp webhook routes join this app with the delivery engine.
"""

from __future__ import annotations

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.db import get_engine
from app.redis_conn import get_redis


async def healthz(_request: Request) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # report, don't crash: this endpoint exists to say what is wrong
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        get_redis().ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if healthy else "degraded", **checks}, status_code=200 if healthy else 503)


def build_http_api() -> Starlette:
    return Starlette(routes=[Route("/healthz", healthz, methods=["GET"])])
