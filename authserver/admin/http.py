"""Request decoding and response encoding shared by the admin handlers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from authserver.errors import InvalidInput
from authserver.resources import Resources
from authserver.validation import parse_json_object
from authserver.web.body import read_body, require_media_type

MAX_BODY = 64 * 1024  # bytes; the largest legitimate admin body is a client with 20 URIs


def resources(request: Request) -> Resources:
    res: Resources = request.state.res
    return res


async def json_body(request: Request) -> dict[str, Any]:
    require_media_type(request, "application/json")
    return parse_json_object(await read_body(request, MAX_BODY))


def query(request: Request, allowed: Iterable[str]) -> dict[str, str]:
    """The query parameters, each at most once and all of them known."""
    allowed = set(allowed)
    params: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name not in allowed:
            raise InvalidInput(f"unknown query parameter {name[:64]!r}")
        if name in params:
            raise InvalidInput(f"query parameter {name!r} is repeated")
        if "\x00" in value:
            raise InvalidInput(f"query parameter {name!r} holds a NUL")
        params[name] = value
    return params


def ok(body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})
