"""The authorization endpoint's protocol side (RFC 6749 §4.1.1 to §4.1.2), without HTTP.

A request's query is parsed once (``AuthorizationRequest``) and validated once by oauthlib
(``Authorization.check``); a code is then issued from that validated request
(``Authorization.issue``), so a request that goes straight through with remembered consent
costs one parse and one validation. Errors that cannot go back to the client (unknown client,
redirect URI not registered) raise ``ErrorPage``; the rest become error redirects.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from oauthlib.common import Request, add_params_to_uri
from oauthlib.oauth2.rfc6749.errors import (
    FatalClientError,
    InvalidClientIdError,
    InvalidRedirectURIError,
    MismatchingRedirectURIError,
    MissingClientIdError,
    MissingRedirectURIError,
    OAuth2Error,
)

from authserver.db.client_cache import ClientCache
from authserver.db.rows import NewCode
from authserver.db.store import Store
from authserver.errors import ErrorPage, InvalidRequest
from authserver.models import Client, User
from authserver.oauth.endpoints import OAuthEndpoints
from authserver.oauth.flow import Flow, active
from authserver.oauth.intents import IssueCode
from authserver.oauth.params import ClientCredentials, encode_form, named, parse_query
from authserver.security.tokens import token_digest
from authserver.validation import CLIENT_ID, OOB_URI

log = logging.getLogger("authserver.oauth")

# A repeat of these makes it unsafe even to redirect an error (RFC 6749 §4.1.2.1).
_FATAL_REPEATS = frozenset({"client_id", "redirect_uri"})
_NO_CLIENT = ClientCredentials(None, None, "none")


@dataclass(frozen=True)
class AuthorizationRequest:
    """An authorization request's query, parsed once."""

    query: bytes
    params: dict[str, str] = field(repr=False)
    repeated: frozenset[str]

    @classmethod
    def parse(cls, query: bytes) -> AuthorizationRequest:
        try:
            params, repeated = parse_query(query)
        except InvalidRequest as exc:
            raise ErrorPage(f"The request is malformed: {exc.description}.") from None
        return cls(query, params, frozenset(repeated))

    @property
    def prompts(self) -> frozenset[str]:
        return frozenset(self.params.get("prompt", "").split())

    def too_old(self, auth_time: datetime | None, now: datetime) -> bool:
        """OpenID Connect Core §3.1.2.1 max_age: was the sign-in longer ago than it allows?"""
        max_age = self.params.get("max_age")
        if max_age is None or not (max_age.isascii() and max_age.isdigit()) or len(max_age) > 9:
            return False
        return auth_time is None or (now - auth_time).total_seconds() > int(max_age)

    def after_sign_in(self) -> AuthorizationRequest:
        """The request the login page signs: signing in once satisfies prompt=login and
        max_age, so they are taken out (the ID token's auth_time still tells the client)."""
        params = dict(self.params)
        params.pop("max_age", None)
        prompts = [prompt for prompt in params.get("prompt", "").split() if prompt != "login"]
        if prompts:
            params["prompt"] = " ".join(prompts)
        else:
            params.pop("prompt", None)
        return AuthorizationRequest(encode_form(params).encode(), params, self.repeated)


@dataclass(frozen=True)
class Checked:
    """An authorization request oauthlib validated, ready to be approved or denied."""

    request: AuthorizationRequest
    client: Client
    scopes: tuple[str, ...]
    redirect_uri: str
    state: str | None
    validated: Request = field(repr=False)  # oauthlib's request, as it validated it
    flow: Flow = field(repr=False)

    @property
    def remembered(self) -> bool:
        """Did the user already grant all of this, so no consent page is needed?"""
        granted = self.flow.remembered_scopes
        return granted is not None and set(self.scopes) <= set(granted)


@dataclass(frozen=True)
class ErrorRedirect:
    location: str


@dataclass(frozen=True)
class Issued:
    """A code, sent back by redirect or, for the oob URN, shown to copy."""

    location: str | None
    code: str | None = field(default=None, repr=False)


class Authorization:
    def __init__(
        self,
        endpoints: OAuthEndpoints,
        clients: ClientCache,
        store: Store,
        *,
        issuer: str,
        code_ttl: int,
    ) -> None:
        self._endpoint = endpoints.authorization
        self._grant = endpoints.code_grant
        self._clients = clients
        self._store = store
        self._issuer = issuer
        self._code_ttl = code_ttl

    async def check(
        self,
        request: AuthorizationRequest,
        user: User | None,
        auth_time: datetime | None = None,
    ) -> Checked | ErrorRedirect:
        """Validate the request with oauthlib, for ``user`` (None before sign-in), who signed
        in at ``auth_time``."""
        if request.repeated & _FATAL_REPEATS:
            raise ErrorPage("The request repeats client_id or redirect_uri.")
        flow = Flow("authorize", _NO_CLIENT, user=user, auth_time=auth_time)
        client_id = request.params.get("client_id")
        if client_id is not None and CLIENT_ID.fullmatch(client_id):
            # Read afresh, not from the cache: an authorization request is rare beside the
            # token endpoint's, and its checks (redirect URIs above all) need the client now.
            loaded = await self._clients.fresh(client_id)
            flow.client = loaded.client if loaded is not None else None
            if user is not None and flow.client is not None:
                # What the user already granted: prompt=none (OpenID Connect Core §3.1.2.1)
                # asks whether the request would go through without a consent page.
                grant = await self._store.grants.active(user.user_id, flow.client.client_id)
                flow.remembered_scopes = None if grant is None else grant[1]
        # Repeated values are dropped before oauthlib sees them: a repeated state is not echoed.
        clean = {name: v for name, v in request.params.items() if name not in request.repeated}
        uri = f"{self._issuer}/oauth2/authorize?{encode_form(clean)}"
        with active(flow):
            try:
                scopes, credentials = self._endpoint.validate_authorization_request(
                    uri, "GET", None, {}
                )
            except FatalClientError as exc:
                raise ErrorPage(_fatal_message(exc)) from None
            except OAuth2Error as exc:
                return self._error_redirect(exc.redirect_uri, exc.error, exc.description, exc.state)
            except ValueError:
                raise ErrorPage("The request is malformed.") from None
        assert flow.client is not None  # validate_client_id accepted it
        state = credentials.get("state")
        if request.repeated:
            return self._error_redirect(
                credentials["redirect_uri"],
                "invalid_request",
                f"{named(sorted(request.repeated)[0])} is repeated",
                state,
            )
        refused = _unsupported_prompt_or_age(request)
        if refused is not None:
            return self._error_redirect(credentials["redirect_uri"], *refused, state)
        return Checked(
            request,
            flow.client,
            tuple(scopes),
            credentials["redirect_uri"],
            state,
            credentials["request"],
            flow,
        )

    def deny(self, checked: Checked) -> ErrorRedirect:
        return self.error_for(checked, "access_denied", "the user denied the request")

    def error_for(self, checked: Checked, error: str, description: str) -> ErrorRedirect:
        return self._error_redirect(checked.redirect_uri, error, description, checked.state)

    async def issue(self, checked: Checked) -> Issued:
        """Create the code for a request the user approved, store it, and say where it goes.

        The tail of oauthlib's ``create_authorization_response``, run on the request ``check``
        validated instead of validating it all over again.
        """
        grant, request, flow = self._grant, checked.validated, checked.flow
        with active(flow):
            code: dict[str, Any] = grant.create_authorization_code(request)
            for modifier in grant._code_modifiers:
                code = modifier(code, None, request)
            grant.request_validator.save_authorization_code(request.client_id, code, request)
            headers, _, _ = grant.prepare_authorization_response(request, code, {}, None, 302)
        intent = next(i for i in flow.intents if isinstance(i, IssueCode))
        client_id = checked.client.client_id
        async with self._store.transaction() as tx:
            grant_id = await tx.grants.ensure(intent.user_id, client_id, checked.scopes)
            reused = await tx.codes.insert(
                NewCode(
                    digest=token_digest(intent.code),
                    client_id=client_id,
                    user_id=intent.user_id,
                    grant_id=grant_id,
                    redirect_uri=intent.redirect_uri,
                    scope=intent.scope,
                    code_challenge=intent.code_challenge,
                    expires_in=self._code_ttl,
                    nonce=intent.nonce,
                    auth_time=intent.auth_time,
                )
            )
            await tx.audit.record("code.issued", client_id=client_id, user_id=intent.user_id)
            if reused:
                # The same challenge twice means the client does not make a fresh verifier per
                # request: PKCE then protects nothing (RFC 9700 §2.1.1 asks servers to notice).
                log.warning("client %s sent a PKCE challenge it used before", client_id)
                await tx.audit.record("pkce.challenge_reused", client_id=client_id)
        if checked.redirect_uri == OOB_URI:
            return Issued(None, intent.code)
        return Issued(self._with_iss(headers["Location"]))

    def _with_iss(self, location: str) -> str:
        # RFC 9207 §2: every authorization response names its issuer.
        located: str = add_params_to_uri(location, [("iss", self._issuer)])
        return located

    def _error_redirect(
        self, redirect_uri: str | None, error: str, description: str | None, state: Any
    ) -> ErrorRedirect:
        if not redirect_uri or redirect_uri == OOB_URI:
            raise ErrorPage(description or error)
        params = [("error", error)]
        if description:
            params.append(("error_description", description))
        if state:
            params.append(("state", str(state)))
        params.append(("iss", self._issuer))
        location: str = add_params_to_uri(redirect_uri, params)
        return ErrorRedirect(location)


def _unsupported_prompt_or_age(request: AuthorizationRequest) -> tuple[str, str] | None:
    """What OpenID Connect Core §3.1.2.1 and §6 ask of a request that oauthlib does not check."""
    params = request.params
    # Request objects (§6) are not supported: say so rather than ignore what they ask.
    for name, error in _UNSUPPORTED_PARAMETERS.items():
        if name in params:
            return error, f"the {name} parameter is not supported"
    # One account per session, so select_account cannot be honoured.
    if "select_account" in request.prompts:
        return "account_selection_required", "selecting an account is not supported"
    max_age = params.get("max_age")
    if max_age is not None and not (max_age.isascii() and max_age.isdigit() and len(max_age) < 10):
        return "invalid_request", "max_age must be a number of seconds"
    if "openid" in params.get("scope", "").split() and "redirect_uri" not in params:
        return "invalid_request", "an OpenID Connect request must name its redirect_uri"
    return None


_UNSUPPORTED_PARAMETERS = {
    "request": "request_not_supported",
    "request_uri": "request_uri_not_supported",
    "registration": "registration_not_supported",
}


def _fatal_message(exc: FatalClientError) -> str:
    if isinstance(exc, (InvalidClientIdError, MissingClientIdError)):
        return "The application is unknown or no longer active."
    if isinstance(exc, (MismatchingRedirectURIError, InvalidRedirectURIError)):
        return "The redirect URI is not one the application registered."
    if isinstance(exc, MissingRedirectURIError):
        return "The request has no redirect URI, and the application registered several."
    return "The request is malformed."
