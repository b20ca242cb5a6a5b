"""oauthlib's endpoints, built once with only the grants this server supports.

Not oauthlib's all-in-one ``Server``: that one also routes the implicit grant and advertises
it. The device-code grant (RFC 8628) is here for the applications that enable it
(authserver.oauth.device). Tokens come from our codec (kind prefix + MAC) and carry our
lifetimes.
The code and refresh grants are oauthlib's OpenID Connect ones around the OAuth grants: they
add an ID token when (and only when) ``openid`` was granted, and leave every other request
as the OAuth grant answers it.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from oauthlib.common import Request
from oauthlib.oauth2 import (
    AuthorizationEndpoint,
    BearerToken,
    IntrospectEndpoint,
    RequestValidator,
    RevocationEndpoint,
    TokenEndpoint,
)
from oauthlib.oauth2.rfc6749.errors import InvalidRequestError, UnsupportedResponseTypeError
from oauthlib.oauth2.rfc6749.grant_types import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    ResourceOwnerPasswordCredentialsGrant,
)
from oauthlib.oauth2.rfc6749.grant_types.authorization_code import code_challenge_method_s256
from oauthlib.openid.connect.core.endpoints.userinfo import UserInfoEndpoint
from oauthlib.openid.connect.core.grant_types import (
    AuthorizationCodeGrant as OpenIDAuthorizationCodeGrant,
)
from oauthlib.openid.connect.core.grant_types import RefreshTokenGrant as OpenIDRefreshTokenGrant

from authserver.oauth.device import DEVICE_GRANT, DeviceEndpoint
from authserver.oauth.exchange import TOKEN_EXCHANGE, TokenExchangeGrant
from authserver.oauth.openid import IdTokenSigner
from authserver.oauth.validator import Validator
from authserver.security.tokens import TokenCodec, TokenKind

# Each is advertised in the metadata though some are per client (the password grant, token
# exchange): RFC 8414 lists what the server supports, and which client may use what is the
# client's registration, not the server's.
GRANT_TYPES = (
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "password",
    TOKEN_EXCHANGE,
)


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


class OpenIDCodeGrant(OpenIDAuthorizationCodeGrant):  # type: ignore[misc]  # oauthlib is untyped
    """oauthlib's OpenID Connect code grant around ours (its own constructor would make a plain
    OAuth grant, without our codes and our PKCE rules)."""

    def __init__(self, grant: CodeGrant) -> None:
        self.proxy_target = grant
        self.custom_validators.post_auth.append(self.openid_authorization_validator)
        self.register_token_modifier(self.add_id_token)


@dataclass(frozen=True)
class OAuthEndpoints:
    authorization: AuthorizationEndpoint
    code_grant: OpenIDCodeGrant  # the authorization endpoint's one response type
    token: TokenEndpoint
    revocation: RevocationEndpoint
    introspection: IntrospectEndpoint
    userinfo: UserInfoEndpoint
    device: DeviceEndpoint
    # What the bearer token type issues with, for answers made without oauthlib (decide).
    mint_access: Callable[[], str]
    access_token_ttl: int


def build_endpoints(
    issuer: str,
    *,
    access_token_ttl: int,
    codec: TokenCodec,
    id_tokens: IdTokenSigner,
    device_code_ttl: int = 600,
    device_poll_interval: int = 5,
) -> OAuthEndpoints:
    """oauthlib's endpoints over one validator, with our tokens and lifetimes; built once."""
    validator = Validator(issuer, id_tokens)
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
    code_grant = OpenIDCodeGrant(CodeGrant(validator, codec))
    device = DeviceEndpoint(
        validator,
        codec,
        issuer=issuer,
        expires_in=device_code_ttl,
        interval=device_poll_interval,
    )
    token = TokenEndpoint(
        default_grant_type="authorization_code",
        default_token_type=bearer,
        grant_types={
            "authorization_code": code_grant,
            "refresh_token": OpenIDRefreshTokenGrant(validator, issue_new_refresh_tokens=True),
            "client_credentials": ClientCredentialsGrant(validator),
            "password": ResourceOwnerPasswordCredentialsGrant(validator),
            TOKEN_EXCHANGE: TokenExchangeGrant(validator),
            DEVICE_GRANT: device.device_code_grant,
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
        userinfo=UserInfoEndpoint(validator),
        device=device,
        mint_access=lambda: access_token(None),
        access_token_ttl=access_token_ttl,
    )


_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")  # base64url of a SHA-256 digest, unpadded


def check_authorization_request(request: Request) -> dict[str, Any]:
    """What oauthlib lets through at the authorization endpoint and RFC 9700 does not.

    Runs once client and redirect URI are validated, so its errors go back to the client.
    """
    response_type = request.response_type
    if response_type is not None and response_type != "code":
        # "code token" and friends: no implicit or hybrid flows (RFC 9700 §2.1.2).
        raise UnsupportedResponseTypeError(request=request)
    challenge, method = request.code_challenge, request.code_challenge_method
    if challenge is not None:
        if method != "S256":
            # Not even as the default: a missing method would mean "plain" (RFC 7636 §4.3).
            raise InvalidRequestError(
                request=request, description="code_challenge_method must be S256"
            )
        if not _CHALLENGE.fullmatch(challenge):
            raise InvalidRequestError(
                request=request, description="code_challenge is not a base64url SHA-256 digest"
            )
    elif method is not None:
        raise InvalidRequestError(request=request, description="code_challenge is missing")
    return {}


def assert_synchronous(validator: RequestValidator) -> None:
    """Refuse to start with an ``async def`` validator method.

    oauthlib would call it and get a coroutine, which is truthy: every check it stands for would
    silently pass.
    """
    for name in dir(validator):
        if inspect.iscoroutinefunction(getattr(validator, name, None)):
            raise TypeError(f"validator method {name} is a coroutine function")
