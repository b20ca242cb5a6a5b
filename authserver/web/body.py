"""Reading request bodies with a hard size bound, before anything parses them."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (
        not (declared.isascii() and declared.isdigit()) or int(declared) > limit
    ):
        raise HTTPException(413, f"the body must be at most {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"the body must be at most {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def media_type(request: Request) -> str:
    """The request body's media type, without parameters, lower-cased ("" when none)."""
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def require_media_type(request: Request, expected: str) -> None:
    if media_type(request) != expected:
        raise HTTPException(415, f"the body must be {expected}")
