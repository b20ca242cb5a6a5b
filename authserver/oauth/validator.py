"""oauthlib's ``RequestValidator``, answered from the request's ``Flow`` and nothing else.

Every method is synchronous and pure: it reads what the load phase put in the flow and records
write intents for the store phase. Checks oauthlib leaves to us are made here and cite the
clause they enforce.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from oauthlib.common import Request
from oauthlib.oauth2 import RequestValidator
from oauthlib.oauth2.rfc6749.errors import (
    UnauthorizedClientError,
)
from oauthlib.oauth2.rfc6749.grant_types.authorization_code import (
    code_challenge_method_s256,
)

from authserver import scopes as scope_names
from authserver.models import Client
from authserver.oauth.device import DEVICE_GRANT, device_status
from authserver.oauth.exchange import TOKEN_EXCHANGE, ExchangeValidation, exchanged_intent
from authserver.oauth.flow import Flow, current
from authserver.oauth.intents import (
    Audit,
    ClaimCode,
    CountAuthFailure,
    IssueCode,
    IssueTokens,
    RevokeCodeFamilies,
    RevokeFamily,
    RevokeToken,
)
from authserver.oauth.introspection import loaded_claims
from authserver.oauth.openid import IdTokenSigner, OpenIDValidation
from authserver.oidc.claims import IDENTITY_SCOPES
from authserver.security.tokens import token_digest
from authserver.validation import redirect_matches

# RFC 7636 §4.1: 43 to 128 characters of [A-Z] [a-z] [0-9] "-" "." "_" "~".
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
# Stands in for "no redirect_uri": oauthlib needs a non-empty default to go on to
# confirm_redirect_uri, which then insists the code was issued without one too.
_NO_REDIRECT_URI = "urn:authserver:no-redirect-uri"


class Validator(ExchangeValidation, OpenIDValidation, RequestValidator):  # type: ignore[misc]  # oauthlib is untyped
    def __init__(self, issuer: str, id_tokens: IdTokenSigner) -> None:
        super().__init__()
        self._issuer = issuer
        self._id_tokens = id_tokens

    # Authorization endpoint (RFC 6749 §4.1.1, §3.1.2)

    def validate_client_id(self, client_id: str, request: Request, *a: Any, **kw: Any) -> bool:
        client = current().client
        if client is None or not client.active or client.client_id != client_id:
            return False
        request.client = client
        return True

    def validate_redirect_uri(
        self, client_id: str, redirect_uri: str, request: Request, *a: Any, **kw: Any
    ) -> bool:
        client = current().client
        if client is None:
            return False
        return redirect_matches(client.redirect_uris, redirect_uri, client.is_public)

    def validate_response_type(
        self,
        client_id: str,
        response_type: str,
        client: Client,
        request: Request,
        *a: Any,
        **kw: Any,
    ) -> bool:
        return response_type == "code"

    def save_authorization_code(
        self, client_id: str, code: dict[str, str], request: Request, *a: Any, **kw: Any
    ) -> None:
        flow = current()
        assert flow.user is not None  # only a signed-in user's request gets this far
        flow.record(
            IssueCode(
                code=code["code"],
                user_id=flow.user.user_id,
                redirect_uri=None if request.using_default_redirect_uri else request.redirect_uri,
                scope=scope_names.to_string(request.scopes or ()),
                code_challenge=request.code_challenge,
                nonce=request.nonce or None,
                auth_time=flow.auth_time,
            )
        )

    # Client authentication (RFC 6749 §2.3, §3.2.1)

    def client_authentication_required(self, request: Request, *args: Any, **kw: Any) -> bool:
        flow = current()
        if flow.endpoint == "introspect" or flow.credentials.method != "none":
            # Introspection is for trusted resource servers only: a public client must not
            # fall through to authenticate_client_id and read any token (oauthlib trap).
            return True
        return flow.client is None or not flow.client.is_public

    def authenticate_client(self, request: Request, *args: Any, **kw: Any) -> bool:
        flow = current()
        if not flow.client_passes():
            _audit_failure(flow)
            return False
        request.client = flow.client
        return True

    def authenticate_client_id(self, client_id: str, request: Request, *a: Any, **kw: Any) -> bool:
        flow = current()
        client = flow.client
        if client is None or not client.active or not client.is_public or client_id is None:
            _audit_failure(flow)
            return False
        request.client = client
        return client.client_id == client_id

    def validate_grant_type(
        self, client_id: str, grant_type: str, client: Client, request: Request, *a: Any, **kw: Any
    ) -> bool:
        if grant_type == "client_credentials":
            return not client.is_public  # RFC 6749 §4.4: confidential clients only
        if grant_type == "password":
            return client.password_grant  # the app's owner must have enabled it
        if grant_type == TOKEN_EXCHANGE:
            # RFC 8693 §2.1: web apps the operator allowed to; never a public client.
            return client.token_exchange and not client.is_public
        if grant_type == DEVICE_GRANT:
            return client.device_grant  # RFC 8628: likewise
        return grant_type in ("authorization_code", "refresh_token")

    # Scopes

    def get_default_scopes(self, client_id: str, request: Request, *a: Any, **kw: Any) -> list[str]:
        return list(scope_names.DEFAULT_SCOPES)

    def validate_scopes(
        self,
        client_id: str,
        scopes: list[str],
        client: Client,
        request: Request,
        *a: Any,
        **kw: Any,
    ) -> bool:
        if not scopes or not scope_names.known(scopes):
            return False
        # Nobody to identify without a user: OpenID scopes are for user grants only.
        return request.grant_type != "client_credentials" or not (
            set(scopes) & set(IDENTITY_SCOPES)
        )

    # Authorization code grant (RFC 6749 §4.1.3, RFC 7636 §4.6)

    def validate_code(
        self, client_id: str, code: str, client: Client, request: Request, *a: Any, **kw: Any
    ) -> bool:
        flow = current()
        row = flow.code
        if row is None or row.digest != token_digest(code) or row.client_id != client.client_id:
            return False
        verifier = request.code_verifier
        if verifier is not None and not _VERIFIER.fullmatch(verifier):
            return False
        if row.code_challenge is None and verifier is not None:
            return False  # RFC 9700 §4.8.2: no challenge at authorize, no verifier now (downgrade)
        if request.redirect_uri != row.redirect_uri:
            # RFC 6749 §4.1.3, §5.2: invalid_grant (oauthlib's confirm_redirect_uri path would
            # answer invalid_request).
            return False
        if row.consumed:
            # RFC 6749 §4.1.2: a code used twice revokes what it issued, but only when the replay
            # is otherwise valid (OAuth 2.1 §7.5.2: an invalid one must not be a revocation DoS).
            if _verifier_matches(row.code_challenge, verifier):
                flow.record(RevokeCodeFamilies(row.digest))
                flow.record(Audit("code.replay_detected", client.client_id, row.user_id))
            return False
        if not row.live:
            return False
        request.scopes = list(scope_names.from_string(row.scope))
        return True

    def is_pkce_required(self, client_id: str, request: Request, *a: Any, **kw: Any) -> bool:
        # D17: per client; public clients always (RFC 8252 §8.1), whatever their row says.
        client = current().client
        return client is None or client.is_public or client.require_pkce

    def get_code_challenge(self, code: str, request: Request, *a: Any, **kw: Any) -> str | None:
        row = current().code
        return None if row is None else row.code_challenge

    def get_code_challenge_method(self, code: str, request: Request, *a: Any, **kw: Any) -> str:
        return "S256"  # the only method ever stored (RFC 9700 §2.1.1; a column check)

    def get_default_redirect_uri(
        self, client_id: str, request: Request, *a: Any, **kw: Any
    ) -> str | None:
        flow = current()
        if flow.endpoint == "token":
            return _NO_REDIRECT_URI
        # RFC 6749 §3.1.2.3: without redirect_uri, only a client with exactly one may go on.
        client = flow.client
        if client is None or len(client.redirect_uris) != 1:
            return None
        return client.redirect_uris[0]

    def confirm_redirect_uri(
        self,
        client_id: str,
        code: str,
        redirect_uri: str,
        client: Client,
        request: Request,
        *a: Any,
        **kw: Any,
    ) -> bool:
        """RFC 6749 §4.1.3: the same redirect_uri as the authorization request, or none if it
        had none."""
        row = current().code
        if row is None:
            return False
        if request.using_default_redirect_uri:
            return row.redirect_uri is None
        return row.redirect_uri is not None and redirect_uri == row.redirect_uri

    def invalidate_authorization_code(
        self, client_id: str, code: str, request: Request, *a: Any, **kw: Any
    ) -> None:
        row = current().code
        assert row is not None  # validate_code accepted it
        current().record(ClaimCode(row.digest))

    # Device code grant (RFC 8628 §3.4, §3.5)

    def validate_device_code(
        self, client_id: str, code: str, request: Request, *a: Any, **kw: Any
    ) -> str | None:
        return device_status(current(), request.client.client_id, code, request)

    # Password grant (RFC 6749 §4.3.2)

    def validate_user(
        self,
        username: str,
        password: str,
        client: Client,
        request: Request,
        *a: Any,
        **kw: Any,
    ) -> bool:
        if not client.password_grant:
            # RFC 6749 §5.2 unauthorized_client; oauthlib asks about the user before it checks
            # the grant type, which would answer invalid_grant.
            raise UnauthorizedClientError(request=request)
        # The sign-in policy decided in the load phase (and counted the attempt there).
        user = current().user
        if user is None:
            return False
        request.user = user.user_id
        return True

    # Refresh grant (RFC 6749 §6, RFC 9700 §4.14.2)

    def validate_refresh_token(
        self, refresh_token: str, client: Client, request: Request, *a: Any, **kw: Any
    ) -> bool:
        flow = current()
        row = flow.token
        if (
            row is None
            or row.kind != "refresh"
            or row.digest != token_digest(refresh_token)
            or row.client_id != client.client_id
        ):
            return False
        if row.consumed and row.family_id is not None and not row.revoked:
            # A rotated-out token came back: someone holds a copy. Kill the whole family.
            flow.record(RevokeFamily(row.family_id, row.digest))
            flow.record(Audit("refresh.reuse_detected", client.client_id, row.user_id))
            return False
        return row.active

    def get_original_scopes(
        self, refresh_token: str, request: Request, *a: Any, **kw: Any
    ) -> list[str]:
        row = current().token
        return [] if row is None else list(scope_names.from_string(row.scope))

    def rotate_refresh_token(self, request: Request) -> bool:
        return True

    # Issuing

    def save_bearer_token(
        self, token: dict[str, Any], request: Request, *a: Any, **kw: Any
    ) -> None:
        flow = current()
        grant_type = request.grant_type
        scope = scope_names.to_string(str(token.get("scope", "")).split())
        if grant_type == TOKEN_EXCHANGE:
            flow.record(exchanged_intent(flow, token, scope))
            return
        common = {
            "grant_type": grant_type,
            "access_token": token["access_token"],
            "refresh_token": token.get("refresh_token"),
            "scope": scope,
        }
        if grant_type == "authorization_code" and flow.code is not None:
            code = flow.code
            intent = IssueTokens(
                **common,
                user_id=code.user_id,
                grant_id=code.grant_id,
                family_id=uuid.uuid4(),
                code_digest=code.digest,
                auth_time=code.auth_time,
            )
        elif grant_type == "refresh_token" and flow.token is not None:
            old = flow.token
            intent = IssueTokens(
                **common,
                user_id=old.user_id,
                grant_id=old.grant_id,
                family_id=old.family_id or uuid.uuid4(),
                rotated_from=old.digest,
                refresh_scope=old.scope,
                not_after=old.expires_at,
                auth_time=old.auth_time,
            )
        elif grant_type == DEVICE_GRANT and flow.device is not None:
            device = flow.device
            intent = IssueTokens(
                **common,
                user_id=device.user_id,
                grant_id=device.grant_id,
                family_id=uuid.uuid4(),
                device_digest=device.digest,
                auth_time=device.auth_time,
            )
        elif grant_type == "password" and flow.user is not None:
            intent = IssueTokens(
                **common, user_id=flow.user.user_id, grant_id=None, family_id=uuid.uuid4()
            )
        else:
            intent = IssueTokens(**common, user_id=None, grant_id=None, family_id=None)
        flow.record(intent)  # the store phase audits the issue with the tokens

    # Revocation (RFC 7009 §2.1) and introspection (RFC 7662 §2.2)

    def revoke_token(
        self, token: str, token_type_hint: str | None, request: Request, *a: Any, **kw: Any
    ) -> None:
        flow = current()
        row = flow.token
        mine = row is not None and row.client_id == request.client.client_id
        # Another client's token: answer 200 and do nothing (RFC 7009 §2.1, §2.2).
        if row is not None and mine and row.digest == token_digest(token):
            flow.record(RevokeToken(row.digest, row.client_id))
            flow.record(Audit("token.revoked", row.client_id, row.user_id, {"kind": row.kind}))

    def introspect_token(
        self, token: str, token_type_hint: str | None, request: Request, *a: Any, **kw: Any
    ) -> dict[str, Any] | None:
        return loaded_claims(current(), token, self._issuer)


def _verifier_matches(challenge: str | None, verifier: str | None) -> bool:
    """RFC 7636 §4.6 S256 check (or no PKCE on either side), with oauthlib's own comparison."""
    if challenge is None or verifier is None:
        return challenge is None and verifier is None
    return bool(code_challenge_method_s256(verifier, challenge))


def _audit_failure(flow: Flow) -> None:
    client_id = flow.client.client_id if flow.client is not None else None
    flow.record(Audit("client.auth_failed", client_id, None, {"method": flow.credentials.method}))
    if client_id is not None and flow.credentials.secret is not None:
        flow.record(CountAuthFailure(client_id, flow.address))
