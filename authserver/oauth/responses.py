"""The one adapter from oauthlib's ``(headers, body, status)`` to the answer sent over ASGI.

It adds what every OAuth answer needs (``no-store``) and fixes what oauthlib gets wrong: a 401
names the authentication scheme the client actually used (RFC 6749 §5.2), not always Bearer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from starlette.types import Send

REALM = "authserver"

Headers = list[tuple[bytes, bytes]]

# Set by this module whatever oauthlib said; oauthlib's own values of these are dropped.
_OURS = frozenset({"cache-control", "pragma", "content-type", "www-authenticate", "content-length"})
_NO_STORE: Headers = [(b"cache-control", b"no-store"), (b"pragma", b"no-cache")]
_JSON = (b"content-type", b"application/json")
_BASIC_CHALLENGE = (
    b"www-authenticate",
    f'Basic realm="{REALM}", error="invalid_client"'.encode(),
)


@dataclass(frozen=True, slots=True)
class Answer:
    """A complete response, sent in two ASGI messages once everything is decided and stored."""

    status: int
    headers: Headers
    body: bytes

    async def send(self, send: Send, *extra: tuple[bytes, bytes]) -> None:
        headers = [*self.headers, *extra] if extra else self.headers
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


def oauth_response(
    headers: dict[str, str], body: str, status: int, extra: Headers | None = None
) -> Answer:
    out = [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in headers.items()
        # oauthlib's CORS header would let any web page read token answers.
        if name.lower() not in _OURS and name.lower() != "access-control-allow-origin"
    ]
    out.extend(_NO_STORE)
    if status == 401:
        # RFC 6749 §5.2: Basic is the scheme clients authenticate with here (a client that sent
        # its secret in the body is told the scheme it may use instead).
        out.append(_BASIC_CHALLENGE)
    encoded = body.encode()
    if encoded:
        out.append(_JSON)
    out.append((b"content-length", str(len(encoded)).encode()))
    if extra:
        out.extend(extra)
    return Answer(status, out, encoded)


def oauth_error(status: int, error: str, description: str, extra: Headers | None = None) -> Answer:
    body = json.dumps({"error": error, "error_description": _safe(description)})
    return oauth_response({}, body, status, extra)


def _safe(description: str) -> str:
    """RFC 6749 §5.2: error_description is limited to %x20-21 / %x23-5B / %x5D-7E, and ours
    may quote a parameter name the caller chose."""
    return "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in description)
