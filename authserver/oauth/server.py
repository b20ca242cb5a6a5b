"""oauthlib's endpoints, built once with only the grants this server supports.

Not oauthlib's all-in-one ``Server``: that one also routes the implicit and device-code grants
and advertises them. Tokens come from our codec (kind prefix + MAC) and carry our lifetimes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from oauthlib.oauth2 import BearerToken, IntrospectEndpoint, RevocationEndpoint, TokenEndpoint
from oauthlib.oauth2.rfc6749.grant_types import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    RefreshTokenGrant,
    ResourceOwnerPasswordCredentialsGrant,
)

from authserver.config import Settings
from authserver.oauth.validator import Validator, assert_synchronous
from authserver.security.tokens import TokenCodec, TokenKind

GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials", "password")


@dataclass(frozen=True)
class OAuthEndpoints:
    token: TokenEndpoint
    revocation: RevocationEndpoint
    introspection: IntrospectEndpoint
    validator: Validator


def build_endpoints(settings: Settings, codec: TokenCodec) -> OAuthEndpoints:
    validator = Validator(settings.issuer, settings.pkce_required_for_all)
    assert_synchronous(validator)

    def access_token(request: Any) -> str:
        return codec.mint(TokenKind.ACCESS)

    def refresh_token(request: Any) -> str:
        return codec.mint(TokenKind.REFRESH)

    bearer = BearerToken(
        validator,
        token_generator=access_token,
        refresh_token_generator=refresh_token,
        expires_in=settings.access_token_ttl,
    )
    code_grant = AuthorizationCodeGrant(validator)
    token = TokenEndpoint(
        default_grant_type="authorization_code",
        default_token_type=bearer,
        grant_types={
            "authorization_code": code_grant,
            "refresh_token": RefreshTokenGrant(validator, issue_new_refresh_tokens=True),
            "client_credentials": ClientCredentialsGrant(validator),
            "password": ResourceOwnerPasswordCredentialsGrant(validator),
        },
    )
    return OAuthEndpoints(
        token=token,
        revocation=RevocationEndpoint(validator),
        introspection=IntrospectEndpoint(validator),
        validator=validator,
    )
