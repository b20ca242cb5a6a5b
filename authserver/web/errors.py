"""Every failure becomes a JSON ``{"error", "error_description"}`` with a fitting status.

Starlette's own 404/405 and anything unexpected are turned into the same shape; an unexpected
exception is logged with its traceback on the server and answered without one.
"""

from __future__ import annotations

import logging

import asyncpg
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ExceptionHandler

from authserver.errors import AuthserverError

log = logging.getLogger("authserver")

_HTTP_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
}


def error_response(
    status: int, error: str, description: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AuthserverError)
    return error_response(exc.status, exc.code, exc.description)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "invalid_request")
    return error_response(exc.status_code, code, str(exc.detail), dict(exc.headers or {}))


# An error answer: status, error code, description, extra headers.
ErrorAnswer = tuple[int, str, str, dict[str, str]]


def database_down(exc: Exception) -> ErrorAnswer:
    """Log and describe one of DATABASE_DOWN (also for apps outside Starlette's handlers)."""
    log.warning("database unavailable: %s", type(exc).__name__)
    return 503, "temporarily_unavailable", "the database is unavailable", {"Retry-After": "1"}


def unexpected(method: str, path: str, exc: Exception) -> ErrorAnswer:
    """Log an unexpected exception with its frames; the answer says nothing about it."""
    log.error("unhandled error on %s %s", method, path, exc_info=exc)
    return 500, "server_error", "an unexpected error occurred", {}


def failure(method: str, path: str, exc: Exception) -> ErrorAnswer:
    """What Starlette's handlers below answer, for apps outside Starlette: 503 for an outage,
    500 for anything else."""
    if isinstance(exc, DATABASE_DOWN) and not isinstance(exc, NOT_AN_OUTAGE):
        return database_down(exc)
    return unexpected(method, path, exc)


async def _database_down(request: Request, exc: Exception) -> Response:
    return error_response(*database_down(exc))


async def _unexpected(request: Request, exc: Exception) -> Response:
    return error_response(*unexpected(request.method, request.url.path, exc))


# What asyncpg raises while PostgreSQL is away, restarting or overloaded: a clean 503 with
# Retry-After, so load balancers and clients retry, never a 500.
DATABASE_DOWN: tuple[type[Exception], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
)

# asyncpg's client-side errors that are InterfaceErrors but no outage: an argument a query
# cannot encode, a bad connection option. They are bugs: a 500 with the traceback logged, not a
# 503 telling clients to retry. Catch these before DATABASE_DOWN. (asyncpg.DataError is the
# SQLSTATE 22 class; the client-side one only has this name in asyncpg.exceptions._base.)
NOT_AN_OUTAGE: tuple[type[Exception], ...] = (
    asyncpg.exceptions._base.DataError,
    asyncpg.exceptions.ClientConfigurationError,
)

EXCEPTION_HANDLERS: dict[int | type[Exception], ExceptionHandler] = {
    AuthserverError: _domain_error,
    HTTPException: _http_error,
    **dict.fromkeys(DATABASE_DOWN, _database_down),
    **dict.fromkeys(NOT_AN_OUTAGE, _unexpected),
    Exception: _unexpected,
}
