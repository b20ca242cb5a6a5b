"""Every failure becomes a JSON ``{"error", "error_description"}`` with a fitting status.

Starlette's own 404/405 and anything unexpected are turned into the same shape; an unexpected
exception is logged with its traceback on the server and answered without one.
"""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ExceptionHandler

from authserver.answer import Answer, error_answer, error_json
from authserver.db.pool import DATABASE_DOWN, NOT_AN_OUTAGE, is_outage
from authserver.errors import AuthServerError, DatabaseUnavailable, Unavailable

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
_DATABASE_DOWN = DatabaseUnavailable("the database is unavailable")


def response(answer: Answer) -> Response:
    """An answer as a Starlette response (for the apps Starlette routes)."""
    out = Response(answer.body, status_code=answer.status)
    out.raw_headers = [
        *(h for h in out.raw_headers if h[0] not in {name for name, _ in answer.headers}),
        *answer.headers,
    ]
    return out


def database_down(exc: Exception) -> Unavailable:
    """Log one of DATABASE_DOWN; the error to answer with."""
    log.warning("database unavailable: %s", type(exc).__name__)
    return _DATABASE_DOWN


def unexpected(method: str, path: str, exc: BaseException) -> Answer:
    """Log an unexpected exception with its frames; the answer says nothing about it."""
    log.error("unhandled error on %s %s", method, path, exc_info=exc)
    return error_json(500, "server_error", "an unexpected error occurred")


def failure(method: str, path: str, exc: Exception) -> AuthServerError | Answer:
    """What an exception nobody caught becomes: our own errors as they are, an outage as a 503,
    anything else as a logged 500."""
    if isinstance(exc, AuthServerError):
        return exc
    if is_outage(exc):
        return database_down(exc)
    return unexpected(method, path, exc)


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AuthServerError)
    return response(error_answer(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "invalid_request")
    headers = [(k.lower().encode(), v.encode()) for k, v in (exc.headers or {}).items()]
    return response(error_json(exc.status_code, code, str(exc.detail), headers))


async def _database_down(request: Request, exc: Exception) -> Response:
    return response(error_answer(database_down(exc)))


async def _unexpected(request: Request, exc: Exception) -> Response:
    return response(unexpected(request.method, request.url.path, exc))


async def _client_left(request: Request, exc: Exception) -> Response:
    # The client went away while its request was read: no one to answer, nothing to log.
    return Response(status_code=499)


EXCEPTION_HANDLERS: dict[int | type[Exception], ExceptionHandler] = {
    ClientDisconnect: _client_left,
    AuthServerError: _domain_error,
    HTTPException: _http_error,
    **dict.fromkeys(DATABASE_DOWN, _database_down),
    **dict.fromkeys(NOT_AN_OUTAGE, _unexpected),
    Exception: _unexpected,
}
