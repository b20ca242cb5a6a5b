"""The one adapter from oauthlib's ``(headers, body, status)`` to our ``Answer``.

It adds what every OAuth answer needs (``no-store``) and fixes what oauthlib gets wrong: a 401
names the authentication scheme the client actually used (RFC 6749 §5.2), not always Bearer.
"""

from __future__ import annotations

import json

from authserver.answer import JSON, NO_STORE, Answer, Headers, safe_description
from authserver.errors import AuthServerError, TooManyAttempts, Unavailable

REALM = "authserver"

# oauthlib's (headers, body, status), as every oauthlib endpoint answers.
Triple = tuple[dict[str, str], str, int]

# The headers oauthlib's grants and its introspection endpoint answer JSON with.
OAUTHLIB_JSON_HEADERS = {
    "Content-Type": "application/json",
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
}

# Set by this module whatever oauthlib said; oauthlib's own values of these are dropped.
_OURS = frozenset({"cache-control", "pragma", "content-type", "www-authenticate", "content-length"})
_BASIC_CHALLENGE = (
    b"www-authenticate",
    f'Basic realm="{REALM}", error="invalid_client"'.encode(),
)


def oauth_response(
    headers: dict[str, str], body: str, status: int, extra: Headers | None = None
) -> Answer:
    out = [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in headers.items()
        # oauthlib's CORS header would let any web page read token answers.
        if name.lower() not in _OURS and name.lower() != "access-control-allow-origin"
    ]
    out.extend(NO_STORE)
    if status == 401:
        # RFC 6749 §5.2: Basic is the scheme clients authenticate with here (a client that sent
        # its secret in the body is told the scheme it may use instead).
        out.append(_BASIC_CHALLENGE)
    encoded = body.encode()
    if encoded:
        out.append(JSON)
    out.append((b"content-length", str(len(encoded)).encode()))
    if extra:
        out.extend(extra)
    return Answer(status, out, encoded)


def oauth_error(status: int, error: str, description: str, extra: Headers | None = None) -> Answer:
    body = json.dumps({"error": error, "error_description": safe_description(description)})
    return oauth_response({}, body, status, extra)


def error_of(exc: AuthServerError) -> Answer:
    """An exception of ours as an OAuth error answer, with Retry-After where it says when."""
    extra: Headers = []
    if isinstance(exc, (TooManyAttempts, Unavailable)):
        extra.append((b"retry-after", str(exc.retry_after).encode()))
    return oauth_error(exc.status, exc.error, exc.description, extra)
