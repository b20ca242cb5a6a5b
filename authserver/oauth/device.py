"""The device authorization grant (RFC 8628) on oauthlib's endpoint and grant.

oauthlib 4 brings both (``oauthlib.oauth2.rfc8628``); what they leave to the caller is made here:
- the device code is one of our tokens (kind prefix + MAC, stored as a digest), the user code
  ours too (``security/user_codes``); the endpoint has no hook to save them, so it records an
  intent the store phase writes, like every other write;
- client authentication at the device authorization endpoint works as at the token endpoint,
  HTTP Basic included (§3.1), and only an application whose owner enabled the grant may ask;
- a poll's answer comes from the row the load phase stamped (``device_status``).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from oauthlib.common import Request
from oauthlib.oauth2 import RequestValidator
from oauthlib.oauth2.rfc6749.errors import UnauthorizedClientError
from oauthlib.oauth2.rfc8628.endpoints.device_authorization import DeviceAuthorizationEndpoint
from oauthlib.oauth2.rfc8628.grant_types.device_code import DeviceCodeGrant

from authserver import scopes as scope_names
from authserver.oauth.flow import Flow, current
from authserver.oauth.intents import IssueDeviceCode
from authserver.oauth.responses import Triple
from authserver.security.tokens import TokenCodec, TokenKind, token_digest
from authserver.security.user_codes import generate_user_code

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
VERIFICATION_PATH = "/device"  # short: people type it (RFC 8628 §3.2 verification_uri)


class DeviceGrant(DeviceCodeGrant):  # type: ignore[misc]  # oauthlib is untyped
    def validate_device_authorization_request(self, request: Request) -> None:
        """RFC 8628 §3.1 with RFC 6749 §3.2.1's client authentication, then the grant's own
        permission and the scopes.

        oauthlib's version insists on ``client_id`` in the body, refusing a confidential client
        that authenticates with HTTP Basic; repeated parameters and the media type were refused
        at the HTTP intake already.
        """
        self.validate_client_authentication(request)
        request.client_id = request.client_id or request.client.client_id
        if not self.request_validator.validate_grant_type(
            request.client_id, DEVICE_GRANT, request.client, request
        ):
            raise UnauthorizedClientError(request=request)
        self.validate_scopes(request)


class DeviceEndpoint(DeviceAuthorizationEndpoint):  # type: ignore[misc]  # oauthlib is untyped
    def __init__(
        self,
        validator: RequestValidator,
        codec: TokenCodec,
        *,
        issuer: str,
        expires_in: int,
        interval: int,
    ) -> None:
        verification_uri = f"{issuer}{VERIFICATION_PATH}"

        def complete(user_code: str) -> str:
            return f"{verification_uri}?{urlencode({'user_code': user_code})}"

        super().__init__(
            validator,
            verification_uri,
            expires_in=expires_in,
            interval=interval,
            verification_uri_complete=complete,
            user_code_generator=generate_user_code,
        )
        self.device_code_grant = DeviceGrant(validator)
        self._codec = codec

    def create_device_authorization_response(
        self,
        uri: str,
        http_method: str = "POST",
        body: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Triple:
        answered: tuple[dict[str, str], Any, int] = super().create_device_authorization_response(
            uri, http_method, body, headers
        )
        out, data, status = answered
        if status != 200 or not isinstance(data, dict):
            return out, data if isinstance(data, str) else json.dumps(data), status
        # oauthlib's device code is 30 characters of its own: ours carries a kind and a MAC.
        data["device_code"] = self._codec.mint(TokenKind.DEVICE)
        # oauthlib adds the resolved scope for the caller to store; RFC 8628 §3.2 has no such
        # member, so it is stored and not sent.
        scope = scope_names.to_string(str(data.pop("scope", "")).split())
        current().record(IssueDeviceCode(data["device_code"], data["user_code"], scope))
        return {"Content-Type": "application/json"}, json.dumps(data), 200


def device_status(flow: Flow, client_id: str, code: str, request: Request) -> str | None:
    """RFC 8628 §3.5: where the polled device code stands, as oauthlib's grant names it; None
    for a code that is not this client's to redeem (invalid_grant)."""
    row = flow.device
    if row is None or row.digest != token_digest(code) or row.client_id != client_id:
        return None
    if row.consumed:
        return None
    if not row.live:
        return str(DeviceCodeGrant.DEVICE_CODE_EXPIRED)
    if row.status == "denied":
        return str(DeviceCodeGrant.DEVICE_CODE_DENIED)
    if row.status == "pending":
        if row.too_fast:
            return str(DeviceCodeGrant.DEVICE_CODE_SLOW_DOWN)
        return str(DeviceCodeGrant.DEVICE_CODE_PENDING)
    request.user = row.user_id
    request.scopes = list(scope_names.from_string(row.scope))
    return str(DeviceCodeGrant.DEVICE_CODE_AUTHORIZED)
