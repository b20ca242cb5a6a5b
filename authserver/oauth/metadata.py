"""RFC 8414 authorization server metadata, which is also OpenID Connect Discovery 1.0 §3's
provider metadata: what is enforced, and nothing more."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

from authserver import scopes
from authserver.oauth.device import DEVICE_GRANT
from authserver.oauth.endpoints import GRANT_TYPES
from authserver.oidc.claims import CLAIMS_SUPPORTED
from authserver.oidc.keys import ALGORITHMS

log = logging.getLogger("authserver.oauth")

FIRST_WAIT = 0.5  # seconds a metadata request waits for a fresh answer before using the last


class DeviceGrantAdvert:
    """Whether any application may use the device grant, as the metadata advertises it.

    Read from the database at most every ``refresh`` seconds (the client cache's trust window:
    the grant is a client setting) and never waited on for long: while PostgreSQL is away the
    document keeps answering with the last answer it had.
    """

    def __init__(
        self,
        read: Callable[[], Awaitable[bool]],
        *,
        refresh: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._refresh = refresh
        self._clock = clock
        self._enabled = False
        self._read_at: float | None = None
        self._task: asyncio.Task[None] | None = None

    async def enabled(self) -> bool:
        stale = self._read_at is None or self._clock() - self._read_at >= self._refresh
        if stale and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._fetch())
            with suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), FIRST_WAIT)
        return self._enabled

    async def _fetch(self) -> None:
        try:
            self._enabled = await self._read()
        except Exception as exc:  # the database may be away: keep the last answer
            log.warning("could not read whether the device grant is on: %s", type(exc).__name__)
        finally:
            self._read_at = self._clock()


def metadata(issuer: str, *, device_grant: bool = False) -> dict[str, Any]:
    """The document; ``device_grant`` when some application may use RFC 8628's grant."""
    document = _metadata(issuer)
    if device_grant:
        # RFC 8628 §4: the endpoint, and the grant among the token endpoint's.
        document["device_authorization_endpoint"] = f"{issuer}/oauth2/device_authorization"
        document["grant_types_supported"].append(DEVICE_GRANT)
    return document


def _metadata(issuer: str) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth2/authorize",
        "token_endpoint": f"{issuer}/oauth2/token",
        "revocation_endpoint": f"{issuer}/oauth2/revoke",
        "introspection_endpoint": f"{issuer}/oauth2/introspect",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": list(GRANT_TYPES),
        "scopes_supported": list(scopes.SCOPES),
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        # Only confidential clients allowed to introspect (RFC 7662 §2.1).
        "introspection_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
        ],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
        # OpenID Connect Discovery 1.0 §3
        "userinfo_endpoint": f"{issuer}/oauth2/userinfo",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "end_session_endpoint": f"{issuer}/oauth2/logout",
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": list(ALGORITHMS),
        "claims_supported": list(CLAIMS_SUPPORTED),
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "prompt_values_supported": ["none", "login", "consent"],
    }
