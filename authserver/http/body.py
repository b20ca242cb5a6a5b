"""Reading request bodies with a hard size bound, before anything parses them."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive


async def read_body(request: Request, limit: int) -> bytes:
    # The one read of this request's body: Starlette's own stream() is not used beside it.
    return await read_asgi_body(request.receive, request.headers.get("content-length"), limit)


async def read_asgi_body(receive: Receive, declared: str | None, limit: int) -> bytes:
    """The body, refused with 413 if the declared or the actual size is over ``limit`` bytes."""
    if declared is not None and (
        not (declared.isascii() and declared.isdigit()) or int(declared) > limit
    ):
        raise HTTPException(413, f"the body must be at most {limit} bytes")
    parts: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"the body must be at most {limit} bytes")
        parts.append(chunk)
        more = message.get("more_body", False)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def media_type(request: Request) -> str:
    """The request body's media type, without parameters, lower-cased ("" when none)."""
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def require_media_type(request: Request, expected: str) -> None:
    if media_type(request) != expected:
        raise HTTPException(415, f"the body must be {expected}")
