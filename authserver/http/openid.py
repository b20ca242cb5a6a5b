"""The server's published documents and OpenID Connect's UserInfo endpoint.

- ``/.well-known/oauth-authorization-server`` (RFC 8414 §3) and
  ``/.well-known/openid-configuration`` (OpenID Connect Discovery 1.0 §4): one metadata
  document under both names;
- ``/.well-known/jwks.json``: the public signing keys, cacheable for short enough that no
  relying party meets a ``kid`` it cannot fetch (authserver.oidc.keys.jwks_max_age);
- ``/oauth2/userinfo`` (Core §5.3): GET or POST, the access token as RFC 6750 §2.1 (header) or
  §2.2 (form body) says; never in the query, where it would reach logs (§2.3, RFC 9700 §4.3.2).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from authserver.errors import InvalidRequest
from authserver.http.body import media_type, read_body
from authserver.http.errors import response
from authserver.oauth.params import parse_form
from authserver.oauth.userinfo import UserInfo
from authserver.oidc.keys import SigningKeys, jwks_max_age

MAX_BODY = 16 * 1024  # bytes; a form with one token
FORM = "application/x-www-form-urlencoded"
_PUBLIC = {"Access-Control-Allow-Origin": "*"}  # documents any web page may read


class OpenIDRoutes:
    def __init__(
        self,
        userinfo: UserInfo,
        keys: SigningKeys,
        metadata: Callable[[bool], dict[str, Any]],
        *,
        device_grant_enabled: Callable[[], Awaitable[bool]],
        key_propagation: int,
    ) -> None:
        self._userinfo = userinfo
        self._keys = keys
        # Both versions made once; which one is served depends on whether any application may
        # use the device grant right now (RFC 8414: advertise only what is enforced).
        self._metadata = {enabled: metadata(enabled) for enabled in (False, True)}
        self._device_grant_enabled = device_grant_enabled
        self._jwks_cache = f"public, max-age={jwks_max_age(key_propagation)}"

    async def configuration(self, request: Request) -> Response:
        document = self._metadata[await self._device_grant_enabled()]
        return JSONResponse(document, headers={"Cache-Control": "public, max-age=3600", **_PUBLIC})

    async def jwks(self, request: Request) -> Response:
        return JSONResponse(
            self._keys.jwks,
            headers={"Cache-Control": self._jwks_cache, **_PUBLIC},
            media_type="application/jwk-set+json",
        )

    async def userinfo(self, request: Request) -> Response:
        if "access_token" in request.query_params:
            raise InvalidRequest("send the access token in the Authorization header, not the URL")
        presented = []
        authorization = request.headers.get("authorization")
        if authorization is not None:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() == "bearer":
                token = value.strip()
                if not token or " " in token:
                    raise InvalidRequest("the Authorization header must be 'Bearer <token>'")
                presented.append(token)
        if request.method == "POST" and media_type(request) == FORM:
            form = parse_form(await read_body(request, MAX_BODY))
            if "access_token" in form:
                presented.append(form["access_token"])
        if len(presented) > 1:
            # RFC 6750 §2: one method per request.
            raise InvalidRequest("send the access token one way only")
        answer = await self._userinfo.answer(presented[0] if presented else None)
        return response(answer)

    def routes(self) -> list[Route]:
        return [
            Route("/.well-known/oauth-authorization-server", self.configuration, methods=["GET"]),
            Route("/.well-known/openid-configuration", self.configuration, methods=["GET"]),
            Route("/.well-known/jwks.json", self.jwks, methods=["GET"]),
            Route("/oauth2/userinfo", self.userinfo, methods=["GET", "POST"]),
        ]
