"""The one shape of an HTTP answer, as every layer hands it to the edge: status, headers, body.

The protocol core makes answers without knowing about ASGI or Starlette; the HTTP edge sends
them (two ASGI messages) or wraps them in a Starlette response.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from authserver.errors import AuthServerError, TooManyAttempts, Unavailable

Headers = list[tuple[bytes, bytes]]

JSON = (b"content-type", b"application/json")
NO_STORE: Headers = [(b"cache-control", b"no-store"), (b"pragma", b"no-cache")]


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: Headers  # lower-case names, as ASGI sends them
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        return next((value for key, value in self.headers if key == name), None)


def json_answer(status: int, data: Any, headers: Iterable[tuple[bytes, bytes]] = ()) -> Answer:
    """A JSON answer that no cache keeps (every answer of this service is about someone)."""
    body = json.dumps(data).encode()
    return Answer(
        status,
        [*NO_STORE, JSON, (b"content-length", str(len(body)).encode()), *headers],
        body,
    )


def error_answer(exc: AuthServerError, headers: Iterable[tuple[bytes, bytes]] = ()) -> Answer:
    """``{"error", "error_description"}`` with the exception's status, and ``Retry-After``
    when it says when to come back."""
    extra = list(headers)
    if isinstance(exc, (Unavailable, TooManyAttempts)):
        extra.append((b"retry-after", str(exc.retry_after).encode()))
    return error_json(exc.status, exc.error, exc.description, extra)


def error_json(
    status: int, error: str, description: str, headers: Iterable[tuple[bytes, bytes]] = ()
) -> Answer:
    return json_answer(
        status, {"error": error, "error_description": safe_description(description)}, headers
    )


def safe_description(description: str) -> str:
    """RFC 6749 §5.2: ``error_description`` is limited to %x20-21 / %x23-5B / %x5D-7E; anything
    else (a quote, a backslash, a control or non-ASCII character) becomes '?'."""
    return "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in description)
