"""The one adapter from oauthlib's ``(headers, body, status)`` to a Starlette response.

It adds what every OAuth answer needs (``no-store``) and fixes what oauthlib gets wrong: a 401
names the authentication scheme the client actually used (RFC 6749 §5.2), not always Bearer.
"""

from __future__ import annotations

import json

from starlette.responses import Response

REALM = "authserver"


def oauth_response(headers: dict[str, str], body: str, status: int) -> Response:
    out = {
        key: value
        for key, value in headers.items()
        if key.lower() not in ("www-authenticate", "access-control-allow-origin")
    }
    out["Cache-Control"] = "no-store"
    out["Pragma"] = "no-cache"
    if status == 401:
        # RFC 6749 §5.2: Basic is the scheme clients authenticate with here (a client that sent
        # its secret in the body is told the scheme it may use instead).
        out["WWW-Authenticate"] = f'Basic realm="{REALM}", error="invalid_client"'
    if body:
        out["Content-Type"] = "application/json"
    return Response(body or b"", status_code=status, headers=out)


def oauth_error(status: int, error: str, description: str) -> Response:
    body = json.dumps({"error": error, "error_description": _safe(description)})
    return oauth_response({}, body, status)


def _safe(description: str) -> str:
    """RFC 6749 §5.2: error_description is limited to %x20-21 / %x23-5B / %x5D-7E, and ours
    may quote a parameter name the caller chose."""
    return "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in description)
