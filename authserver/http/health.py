"""Liveness and readiness, served on both listeners and never behind authentication."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

READY_TIMEOUT = 2.0  # seconds: a probe must answer before the kubelet gives up on it
_NO_STORE = {"Cache-Control": "no-store"}


class Health:
    def __init__(self, ping: Callable[[], Awaitable[bool]]) -> None:
        self._ping = ping
        # Set once the process was told to stop: not ready, so load balancers stop sending
        # new requests while the ones in flight finish.
        self.draining = False

    async def healthz(self, request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"}, headers=_NO_STORE)

    async def readyz(self, request: Request) -> JSONResponse:
        if self.draining:
            return JSONResponse({"status": "draining"}, status_code=503, headers=_NO_STORE)
        try:
            writable = await asyncio.wait_for(self._ping(), READY_TIMEOUT)
        except Exception:  # any failure to reach the database means "not ready"
            return JSONResponse({"status": "unavailable"}, status_code=503, headers=_NO_STORE)
        if not writable:
            return JSONResponse({"status": "read_only"}, status_code=503, headers=_NO_STORE)
        return JSONResponse({"status": "ok"}, headers=_NO_STORE)

    def routes(self) -> list[Route]:
        return [
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/readyz", self.readyz, methods=["GET"]),
        ]
