"""Request decoding and response encoding shared by the admin handlers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from authserver.errors import InvalidInput, InvalidRequest
from authserver.http.body import media_type, read_body, require_media_type
from authserver.oauth.params import parse_form
from authserver.validation import parse_json_object

MAX_BODY = 64 * 1024  # bytes; the largest legitimate admin body is a client with 20 URIs


async def json_body(request: Request) -> dict[str, Any]:
    require_media_type(request, "application/json")
    return parse_json_object(await read_body(request, MAX_BODY))


async def form_or_json_body(request: Request) -> dict[str, Any]:
    """A JSON object, or an RFC 7662-style form: the platform may forward either."""
    if media_type(request) == "application/x-www-form-urlencoded":
        try:
            return dict(parse_form(await read_body(request, MAX_BODY)))
        except InvalidRequest as exc:
            raise InvalidInput(exc.description) from None
    return await json_body(request)


def token_from_platform(body: dict[str, Any]) -> str:
    """The token from ``token``, Phraseanet's ``oauth_token``, or a forwarded ``Authorization``
    header value (``OAuth <token>`` or ``Bearer <token>``); exactly one of them."""
    given = {name: body[name] for name in ("token", "oauth_token", "authorization") if name in body}
    unknown = set(body) - {"token", "oauth_token", "authorization", "token_type_hint"}
    if unknown or len(given) != 1:
        raise InvalidInput("send exactly one of token, oauth_token or authorization")
    name, value = given.popitem()
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string")
    if name == "authorization":
        scheme, _, value = value.strip().partition(" ")
        if scheme.lower() not in ("oauth", "bearer") or not value.strip():
            raise InvalidInput("authorization must be 'OAuth <token>' or 'Bearer <token>'")
    return value.strip()


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
