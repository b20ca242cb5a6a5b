"""The validator's OpenID Connect answers (oauthlib.openid), from the request's ``Flow`` like
the rest: no I/O. Signing happens here, in memory, with the keys the replica has loaded."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from oauthlib.common import Request
from oauthlib.oauth2.rfc6749.errors import InvalidRequestError

from authserver import scopes as scope_names
from authserver.models import Client
from authserver.oauth.flow import current
from authserver.oidc.claims import id_token_claims, user_claims
from authserver.oidc.keys import InvalidSignature, SigningKeys


@dataclass(frozen=True)
class IdTokenSigner:
    keys: SigningKeys
    lifetime: int  # seconds an ID token is valid


class OpenIDValidation:
    """Mixed into the validator; ``_issuer`` and ``_id_tokens`` are the validator's."""

    _issuer: str
    _id_tokens: IdTokenSigner

    # The code grant (Core §3.1.3)

    def get_authorization_code_scopes(
        self, client_id: str, code: str, redirect_uri: str, request: Request, *a: Any, **kw: Any
    ) -> list[str]:
        row = current().code
        return [] if row is None else list(scope_names.from_string(row.scope))

    def get_authorization_code_nonce(
        self, client_id: str, code: str, redirect_uri: str, request: Request, *a: Any, **kw: Any
    ) -> str | None:
        row = current().code
        return None if row is None else row.nonce

    def get_id_token(self, token: dict[str, Any], token_handler: Any, request: Request) -> None:
        return None  # oauthlib starts the ID token (aud, iat, nonce, at_hash); we finish it

    def finalize_id_token(
        self, id_token: dict[str, Any], token: dict[str, Any], token_handler: Any, request: Request
    ) -> str:
        flow = current()
        user, client = flow.user, request.client
        # The load phase found both.
        assert user is not None
        assert isinstance(client, Client)
        auth_time: datetime | None = None
        if flow.code is not None:
            auth_time = flow.code.auth_time
        elif flow.token is not None:
            auth_time = flow.token.auth_time  # a refresh: the family's sign-in (Core §12.2)
        claims = id_token_claims(
            id_token,
            issuer=self._issuer,
            client_id=client.client_id,
            user=user,
            scopes=request.scopes or (),
            auth_time=auth_time,
            lifetime=self._id_tokens.lifetime,
        )
        return self._id_tokens.keys.sign(client.id_token_signed_response_alg, claims)

    def refresh_id_token(self, request: Request) -> bool:
        """Core §12.2: a refresh of an ``openid`` grant gets a new ID token (no nonce)."""
        return "openid" in (request.scopes or ())

    # The authorization request (Core §3.1.2.1)

    def validate_silent_login(self, request: Request) -> bool:
        """prompt=none: is the user already signed in?"""
        return current().user is not None

    def validate_silent_authorization(self, request: Request) -> bool:
        """prompt=none: would the request go through without a consent page?"""
        flow = current()
        client = flow.client
        remembered = flow.remembered_scopes
        return (
            client is not None
            and not client.is_public
            and remembered is not None
            and set(request.scopes or ()) <= set(remembered)
        )

    def validate_user_match(
        self,
        id_token_hint: str | None,
        scopes: list[str],
        claims: Any,
        request: Request,
    ) -> bool:
        """An ``id_token_hint`` must be one of our ID tokens (signature and issuer; it may have
        expired) and, when a user is signed in, name that user."""
        if not id_token_hint:
            return True
        try:
            hint = self._id_tokens.keys.verify(id_token_hint)
        except InvalidSignature:
            raise InvalidRequestError(
                request=request, description="id_token_hint is not an ID token of this server"
            ) from None
        if hint.get("iss") != self._issuer:
            raise InvalidRequestError(
                request=request, description="id_token_hint is not an ID token of this server"
            )
        user = current().user
        return user is None or hint.get("sub") == user.user_id

    # UserInfo (Core §5.3)

    def validate_bearer_token(self, token: str | None, scopes: list[str], request: Request) -> bool:
        flow = current()
        row = flow.token
        if token is None or row is None or row.kind != "access" or not row.active:
            return False
        if row.user_id is None or flow.user is None or flow.user.user_id != row.user_id:
            return False
        # A valid token: oauthlib then checks that ``openid`` is among what it grants, and
        # answers insufficient_scope (403) if not, rather than invalid_token (RFC 6750 §3.1).
        request.scopes = sorted(set(row.scope.split()))
        return True

    def get_userinfo_claims(self, request: Request) -> dict[str, Any]:
        flow = current()
        # validate_bearer_token passed.
        assert flow.user is not None
        assert flow.token is not None
        return user_claims(flow.user, flow.token.scope.split())
