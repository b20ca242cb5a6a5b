"""Admin authentication: ``Authorization: Bearer <token>`` against the configured tokens."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from authserver.answer import error_json
from authserver.http.errors import response as as_response

# Probes and the Prometheus scraper carry no credentials; the admin port itself is reachable
# only from the platform (loopback by default, a NetworkPolicy in Kubernetes).
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class AdminTokens:
    def __init__(self, tokens: Sequence[str]) -> None:
        # Digests, so every comparison is between equal-length values whatever is presented.
        self._digests = tuple(hashlib.sha256(token.encode()).digest() for token in tokens)

    def accepts(self, presented: str) -> bool:
        candidate = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).digest()
        accepted = False
        for digest in self._digests:  # no early exit: timing says nothing about which matched
            accepted |= hmac.compare_digest(candidate, digest)
        return accepted


class AdminAuthMiddleware:
    def __init__(self, app: ASGIApp, tokens: AdminTokens) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        scheme, _, credentials = Headers(scope=scope).get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            answer = error_json(
                401,
                "unauthorized",
                "an admin bearer token is required",
                [(b"www-authenticate", b'Bearer realm="authserver-admin"')],
            )
        elif not self.tokens.accepts(credentials.strip()):
            answer = error_json(
                401,
                "unauthorized",
                "the admin token is not valid",
                [(b"www-authenticate", b'Bearer realm="authserver-admin", error="invalid_token"')],
            )
        else:
            await self.app(scope, receive, send)
            return
        await as_response(answer)(scope, receive, send)
