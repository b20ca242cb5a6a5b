"""oauthlib's endpoints, built once with only the grants this server supports.

Not oauthlib's all-in-one ``Server``: that one also routes the implicit and device-code grants
and advertises them. Tokens come from our codec (kind prefix + MAC) and carry our lifetimes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from oauthlib.oauth2 import (
    AuthorizationEndpoint,
    BearerToken,
    IntrospectEndpoint,
    RevocationEndpoint,
    TokenEndpoint,
)
from oauthlib.oauth2.rfc6749.grant_types import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    RefreshTokenGrant,
    ResourceOwnerPasswordCredentialsGrant,
)
from oauthlib.oauth2.rfc6749.grant_types.authorization_code import code_challenge_method_s256

from authserver.oauth.validator import (
    Validator,
    assert_synchronous,
    check_authorization_request,
)
from authserver.security.tokens import TokenCodec, TokenKind

GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials", "password")


class CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]  # oauthlib is untyped
    """The authorization code grant with our codes and S256 as the only PKCE method."""

    _code_challenge_methods: ClassVar[dict[str, Callable[[str, str], bool]]] = {
        "S256": code_challenge_method_s256
    }

    def __init__(self, validator: Validator, codec: TokenCodec) -> None:
        super().__init__(validator, pre_auth=[check_authorization_request])
        self._codec = codec

    def create_authorization_code(self, request: Any) -> dict[str, str]:
        # oauthlib's own codes are 30 random characters: ours carry a kind prefix and a MAC.
        grant = {"code": self._codec.mint(TokenKind.CODE)}
        if request.state:
            grant["state"] = request.state
        return grant


@dataclass(frozen=True)
class OAuthEndpoints:
    authorization: AuthorizationEndpoint
    code_grant: CodeGrant  # the authorization endpoint's one response type
    token: TokenEndpoint
    revocation: RevocationEndpoint
    introspection: IntrospectEndpoint


def build_endpoints(issuer: str, *, access_token_ttl: int, codec: TokenCodec) -> OAuthEndpoints:
    """oauthlib's endpoints over one validator, with our tokens and lifetimes; built once."""
    validator = Validator(issuer)
    assert_synchronous(validator)

    def access_token(request: Any) -> str:
        return codec.mint(TokenKind.ACCESS)

    def refresh_token(request: Any) -> str:
        return codec.mint(TokenKind.REFRESH)

    bearer = BearerToken(
        validator,
        token_generator=access_token,
        refresh_token_generator=refresh_token,
        expires_in=access_token_ttl,
    )
    code_grant = CodeGrant(validator, codec)
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
        authorization=AuthorizationEndpoint(
            default_response_type="code",
            default_token_type=bearer,
            response_types={"code": code_grant},
        ),
        code_grant=code_grant,
        token=token,
        revocation=RevocationEndpoint(validator),
        introspection=IntrospectEndpoint(validator),
    )
