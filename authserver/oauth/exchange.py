"""OAuth 2.0 Token Exchange (RFC 8693), delegation only: a web app allowed to exchange trades an
access token it holds for a new one for the same user, with a scope no wider, optionally
addressed to a resource server, and never outliving the token it came from.

The new token belongs to the acting client and says so in its ``act`` claim (§4.1), nested
for each exchange that led to it. Impersonation (a token without ``act``) and actor tokens are
not offered: the authenticated client is the actor. A client may exchange a token that was
issued to it or addressed to it (``aud``), so a resource server can pass a request on to
another one, up to ``MAX_DEPTH`` hops.

The grant is oauthlib's kind of grant, registered in the token endpoint, and asks the
validator (``ExchangeValidation``) every question; like every validator method those read the
request's ``Flow`` and nothing else.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from oauthlib.common import Request
from oauthlib.oauth2.rfc6749 import errors
from oauthlib.oauth2.rfc6749.grant_types.base import GrantTypeBase

from authserver import scopes as scope_names
from authserver.models import TokenRow
from authserver.oauth.flow import Flow, current
from authserver.oauth.intents import IssueExchanged
from authserver.security.tokens import token_digest

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 -- a name
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 -- RFC 8693 §3
MAX_DEPTH = 2  # exchanges in a chain: a token exchanged twice is not exchanged again


class InvalidTargetError(errors.OAuth2Error):  # type: ignore[misc]  # oauthlib is untyped
    """RFC 8693 §2.2.2 (and RFC 8707 §2): no token for the audience or resource asked for."""

    error = "invalid_target"
    status_code = 400


def _invalid(description: str, request: Request) -> errors.InvalidRequestError:
    return errors.InvalidRequestError(description=description, request=request)


def may_present(row: TokenRow, client_id: str) -> bool:
    """Whether a client may exchange this token: one issued to it, or addressed to it."""
    return row.client_id == client_id or row.audience == client_id


class TokenExchangeGrant(GrantTypeBase):  # type: ignore[misc]  # oauthlib is untyped
    """``grant_type=urn:ietf:params:oauth:grant-type:token-exchange`` (RFC 8693 §2.1)."""

    def create_token_response(self, request: Request, token_handler: Any) -> tuple[Any, str, int]:
        headers = self._get_default_headers()
        try:
            self.validate_token_request(request)
        except errors.OAuth2Error as exc:
            headers.update(exc.headers)
            return headers, exc.json, exc.status_code
        # RFC 8693 §2.2.1: an access token, no refresh token (the subject's holder refreshes).
        token = token_handler.create_token(request, refresh_token=False)
        token["expires_in"] = self.request_validator.exchange_lifetime(token["expires_in"])
        token["issued_token_type"] = ACCESS_TOKEN_TYPE
        self.request_validator.save_token(token, request)
        return headers, json.dumps(token), 200

    def validate_token_request(self, request: Request) -> None:
        if request.grant_type != TOKEN_EXCHANGE:
            raise errors.UnsupportedGrantTypeError(request=request)
        # A public client gets this far (it names itself) and is refused as unauthorized_client
        # by validate_grant_type, like a web app that may not exchange.
        self.validate_client_authentication(request)
        self.validate_grant_type(request)
        self.request_validator.validate_exchange(request)


class ExchangeValidation:
    """The validator's token-exchange questions (mixed into ``Validator``)."""

    def validate_exchange(self, request: Request) -> None:
        """Every rule of RFC 8693 §2.1 this server keeps; raises the §2.2.2 error it breaks.

        Sets ``request.scopes`` to what the new token carries.
        """
        flow = current()
        # oauthlib keeps every body parameter there, but only its own names as attributes.
        params = request._params
        if params.get("actor_token") or params.get("actor_token_type"):
            raise _invalid(
                "actor_token is not supported: the authenticated client is the actor", request
            )
        subject = params.get("subject_token")
        if not subject:
            raise _invalid("subject_token is required", request)
        subject_type = params.get("subject_token_type")
        if not subject_type:
            raise _invalid("subject_token_type is required", request)
        if subject_type != ACCESS_TOKEN_TYPE:
            raise _invalid("subject_token_type must be an access token's", request)
        requested = params.get("requested_token_type")
        if requested and requested != ACCESS_TOKEN_TYPE:
            raise _invalid("only access tokens are issued (requested_token_type)", request)
        if params.get("resource"):
            raise InvalidTargetError(
                description="resource indicators are not supported: name the resource server "
                "by its client id in audience",
                request=request,
            )
        row = _subject(flow, subject, request.client.client_id)
        if row is None:
            # §2.2.2: invalid_request, one answer for unknown, expired, revoked and another
            # client's tokens, so the answer tells nothing about a token one may not use.
            raise _invalid("subject_token is not an active access token of yours", request)
        if len(row.actors) >= MAX_DEPTH:
            raise _invalid(f"subject_token was exchanged {MAX_DEPTH} times already", request)
        _check_audience(flow, params.get("audience"), request)
        granted = scope_names.from_string(row.scope)
        if request.scope is None:
            request.scopes = list(granted)
            return
        asked = request.scope.split()
        if not asked or not scope_names.known(asked) or not set(asked) <= set(granted):
            # Narrower or equal, never wider than what the user granted the subject.
            raise errors.InvalidScopeError(request=request)
        request.scopes = list(scope_names.normalize(asked))

    def exchange_lifetime(self, expires_in: int) -> int:
        """No longer than the subject token has left (it expires with it in the store too)."""
        row = current().token
        if row is None or row.expires_at is None:
            return expires_in
        left = int((row.expires_at - datetime.now(UTC)).total_seconds())
        return max(1, min(expires_in, left))


def exchanged_intent(flow: Flow, token: dict[str, Any], scope: str) -> IssueExchanged:
    """What the store phase writes for an accepted exchange."""
    row, client = flow.token, flow.client
    assert row is not None  # validated
    assert client is not None
    assert row.user_id is not None
    assert row.grant_id is not None  # a user's token always belongs to a grant
    audience = flow.audience.client_id if flow.audience is not None else row.audience
    return IssueExchanged(
        access_token=token["access_token"],
        scope=scope,
        user_id=row.user_id,
        grant_id=row.grant_id,
        subject_digest=row.digest,
        audience=audience,
        actors=(client.client_id, *row.actors),
        lifetime=int(token["expires_in"]),
    )


def _subject(flow: Flow, subject: str, client_id: str) -> TokenRow | None:
    """The subject token's row, if the client may exchange it right now."""
    row = flow.token
    if row is None or row.digest != token_digest(subject) or row.kind != "access":
        return None
    if not row.active or row.user_id is None or not may_present(row, client_id):
        return None  # a client-credentials token has no user to act for
    return row


def _check_audience(flow: Flow, audience: str | None, request: Request) -> None:
    if audience is None:
        return
    target = flow.audience
    if (
        target is None
        or target.client_id != audience
        or not target.active
        or not target.resource_server
    ):
        raise InvalidTargetError(description="audience is not a resource server", request=request)
