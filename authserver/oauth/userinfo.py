"""The UserInfo endpoint (OpenID Connect Core §5.3): what an access token granted ``openid`` may
read of its user, in the same load → decide shape as the token endpoint.

- *load*: the access token's row (only a token whose MAC verifies costs a query) and its user;
- *decide*: oauthlib's UserInfoEndpoint over the validator (authserver.oauth.openid);
- errors are RFC 6750 §3 challenges: ``invalid_token`` 401, ``insufficient_scope`` 403.
"""

from __future__ import annotations

import json

from oauthlib.oauth2.rfc6749.errors import InsufficientScopeError, OAuth2Error
from oauthlib.openid.connect.core.endpoints.userinfo import UserInfoEndpoint

from authserver.answer import JSON, NO_STORE, Answer
from authserver.db.store import Store
from authserver.oauth.flow import Flow, active
from authserver.oauth.introspection import Lookup
from authserver.oauth.params import ClientCredentials
from authserver.security.tokens import TokenCodec, TokenKind, token_digest

_NOBODY = ClientCredentials(None, None, "none")


def challenge(status: int, error: str | None = None, description: str = "") -> Answer:
    """An RFC 6750 §3 error: the challenge in WWW-Authenticate, the same in a JSON body. With no
    ``error``, the request carried no token at all (§3.1: then no error code)."""
    value = 'Bearer realm="authserver"'
    body = b""
    if error is not None:
        value += f', error="{error}"'
        if description:
            value += f', error_description="{description}"'
        if error == "insufficient_scope":
            value += ', scope="openid"'
        body = json.dumps({"error": error, "error_description": description}).encode()
    headers = [*NO_STORE, (b"www-authenticate", value.encode())]
    if body:
        headers.append(JSON)
    headers.append((b"content-length", str(len(body)).encode()))
    return Answer(status, headers, body)


_INVALID = challenge(401, "invalid_token", "the access token is not valid")
_NO_SCOPE = challenge(403, "insufficient_scope", "the access token was not granted openid")


class UserInfo:
    def __init__(
        self,
        endpoint: UserInfoEndpoint,
        store: Store,
        codec: TokenCodec,
        lookup: Lookup,
        *,
        issuer: str,
    ) -> None:
        self._endpoint = endpoint
        self._store = store
        self._codec = codec
        self._lookup = lookup
        self._uri = f"{issuer}/oauth2/userinfo"

    async def answer(self, token: str | None) -> Answer:
        """The user's claims for a bearer ``token`` (None: the request carried none)."""
        if token is None:
            return challenge(401)
        flow = Flow("userinfo", _NOBODY)
        # Load: a token whose MAC fails, or that is not an access token, costs no query.
        if self._codec.kind_of(token) is not TokenKind.ACCESS:
            return _INVALID
        flow.token = await self._lookup(token_digest(token))
        row = flow.token
        if row is None or not row.active or row.user_id is None:
            return _INVALID
        flow.user = await self._store.users.find(row.user_id)
        # Decide: oauthlib checks the token (validate_bearer_token) and the openid scope.
        with active(flow):
            try:
                _, body, status = self._endpoint.create_userinfo_response(
                    self._uri, "GET", None, {"Authorization": f"Bearer {token}"}
                )
            except InsufficientScopeError:
                return _NO_SCOPE
            except OAuth2Error:
                return _INVALID
        encoded = body.encode()
        return Answer(
            status,
            [*NO_STORE, JSON, (b"content-length", str(len(encoded)).encode())],
            encoded,
        )
