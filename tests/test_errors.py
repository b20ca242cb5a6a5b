"""Which failures are an outage (503, retry) and which are bugs (500)."""

from __future__ import annotations

import asyncpg
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from authserver.answer import Answer
from authserver.errors import AuthServerError
from authserver.http.errors import EXCEPTION_HANDLERS, failure

CLIENT_DATA_ERROR = asyncpg.exceptions._base.DataError("invalid input for query argument $1")
OUTAGES = [ConnectionRefusedError(), asyncpg.exceptions.CannotConnectNowError("starting up")]
BUGS = [CLIENT_DATA_ERROR, asyncpg.exceptions.ClientConfigurationError("bad option"), KeyError()]


def status(failed: AuthServerError | Answer) -> int:
    return failed.status


@pytest.mark.parametrize("exc", OUTAGES, ids=type)
def test_outage_is_503(exc: Exception) -> None:
    """The database being away is answered 503, to be retried."""
    assert status(failure("POST", "/oauth2/token", exc)) == 503


@pytest.mark.parametrize("exc", BUGS, ids=type)
def test_client_side_asyncpg_error_is_500(exc: Exception) -> None:
    """asyncpg's client-side InterfaceErrors that are no outage are answered 500, not 503."""
    assert status(failure("POST", "/oauth2/token", exc)) == 500


async def test_starlette_apps_answer_the_same() -> None:
    """The pages and the admin API answer a client-side DataError as a JSON 500 server_error."""

    async def broken(request: Request) -> Response:
        raise CLIENT_DATA_ERROR

    app = Starlette(routes=[Route("/", broken)], exception_handlers=EXCEPTION_HANDLERS)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/")
    assert response.status_code == 500
    assert response.json()["error"] == "server_error"  # Starlette's own 500 is plain text
