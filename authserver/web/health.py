"""Liveness and readiness, served on both listeners and never behind authentication."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from authserver.resources import Resources

READY_TIMEOUT = 2.0  # seconds: a probe must answer before the kubelet gives up on it


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})


async def readyz(request: Request) -> JSONResponse:
    res: Resources = request.state.res
    try:
        await asyncio.wait_for(res.store.ping(), READY_TIMEOUT)
    except Exception:  # any failure to reach the database means "not ready"
        return JSONResponse(
            {"status": "unavailable"}, status_code=503, headers={"Cache-Control": "no-store"}
        )
    return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})


ROUTES = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]
