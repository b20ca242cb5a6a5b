"""The decide phase: oauthlib answers the request from what the load phase put in its ``Flow``.

Synchronous and without I/O: the validator reads the flow and records write intents in it
(tests/test_bridge.py holds that line with an audit hook).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from oauthlib.oauth2.rfc6749.errors import OAuth2Error

from authserver import scopes as scope_names
from authserver.answer import JSON, NO_STORE, Answer
from authserver.oauth.endpoints import OAuthEndpoints
from authserver.oauth.flow import Flow, active
from authserver.oauth.intents import IssueTokens
from authserver.oauth.introspection import (
    INACTIVE_ANSWER,
    ActiveAnswers,
    introspected,
    json_string,
)
from authserver.oauth.params import encode_form
from authserver.oauth.responses import (
    Triple,
    oauth_error,
    oauth_response,
)
from authserver.oidc.claims import IDENTITY_SCOPES

log = logging.getLogger("authserver.oauth")

FORM = "application/x-www-form-urlencoded"

_SERVER_ERROR = oauth_error(500, "server_error", "an unexpected error occurred")
_UNPARSED = oauth_error(400, "invalid_request", "the request could not be parsed")


_CLIENT_CREDENTIALS = "client_credentials"
_CC_PARAMS = frozenset({"grant_type", "scope"})
_ISSUED_HEADERS = (*NO_STORE, JSON)


class Decider:
    def __init__(self, endpoints: OAuthEndpoints, issuer: str) -> None:
        self._active = ActiveAnswers(issuer)
        self._mint_access = endpoints.mint_access
        self._access_token_ttl = endpoints.access_token_ttl
        self._calls: dict[str, tuple[Callable[..., Triple], str]] = {
            "token": (endpoints.token.create_token_response, f"{issuer}/oauth2/token"),
            "revoke": (endpoints.revocation.create_revocation_response, f"{issuer}/oauth2/revoke"),
            "introspect": (
                endpoints.introspection.create_introspect_response,
                f"{issuer}/oauth2/introspect",
            ),
            "device": (
                endpoints.device.create_device_authorization_response,
                f"{issuer}/oauth2/device_authorization",
            ),
        }

    def decide(self, flow: Flow, params: dict[str, str]) -> Answer:
        """Run oauthlib over the loaded flow."""
        token = params.get("token")
        if flow.endpoint == "introspect" and token and flow.client_passes():
            # The hottest request there is, and one oauthlib has nothing to refuse in: its
            # IntrospectEndpoint checks the method, the query, the token and the client (all
            # settled by now), then answers the validator's claims. Building its Request costs
            # more than the rest of the decision, so the answer is made here, the same way
            # (tests/test_bridge.py compares the two).
            row = introspected(flow, token)
            return INACTIVE_ANSWER if row is None else self._active.of_row(row)
        if (
            flow.endpoint == "token"
            and params.get("grant_type") == _CLIENT_CREDENTIALS
            and _CC_PARAMS.issuperset(params)
            and flow.client_passes()
        ):
            # The issue service clients ask for all the time. oauthlib's ClientCredentialsGrant
            # checks the client (settled), that it is confidential, and the scope: for a scope
            # it would take, the token and the answer are made here, the same way
            # (tests/test_bridge.py compares the two); anything else goes to oauthlib.
            issued = self._client_credentials(flow, params.get("scope"))
            if issued is not None:
                return issued
        call, uri = self._calls[flow.endpoint]
        # Only the parsed, deduplicated parameters reach oauthlib, and no credentials in headers.
        headers = {"Content-Type": FORM}
        with active(flow):
            try:
                return oauth_response(*call(uri, "POST", encode_form(params), headers))
            except OAuth2Error as exc:
                return oauth_response(dict(exc.headers or {}), exc.json, exc.status_code)
            except ValueError:
                return _UNPARSED
            except NotImplementedError:
                log.exception("the validator broke oauthlib's contract")
                return _SERVER_ERROR

    def _client_credentials(self, flow: Flow, scope: str | None) -> Answer | None:
        client = flow.client
        if client is None or client.is_public:
            return None
        if scope is None:
            scopes = list(scope_names.DEFAULT_SCOPES)
        else:
            scopes = scope.strip().split(" ")  # oauthlib's scope_to_list
            if not scope_names.known(scopes) or not set(scopes).isdisjoint(IDENTITY_SCOPES):
                return None  # invalid_scope, as oauthlib words it
        token = self._mint_access()
        flow.record(
            IssueTokens(
                grant_type=_CLIENT_CREDENTIALS,
                access_token=token,
                refresh_token=None,
                scope=scope_names.to_string(scopes),
                user_id=None,
                grant_id=None,
                family_id=None,
            )
        )
        return _issued(token, self._access_token_ttl, " ".join(scopes))


def _issued(token: str, expires_in: int, scope: str) -> Answer:
    """oauthlib's answer to a client-credentials request, as ``oauth_response`` makes it from
    its dict and json.dumps, written out directly: the busiest write's answer
    (tests/test_bridge.py compares the two, byte for byte)."""
    body = (
        f'{{"access_token": {json_string(token)}, "expires_in": {expires_in}, '
        f'"token_type": "Bearer", "scope": {json_string(scope)}}}'
    ).encode()
    return Answer(200, [*_ISSUED_HEADERS, (b"content-length", str(len(body)).encode())], body)
