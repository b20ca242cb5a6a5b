"""The one place where async meets sync: load → decide → store.

- *load* (async): from the raw request, work out the client, the grant and the keys, and fetch
  those rows; verify a user's password off the event loop.
- *decide* (sync): run oauthlib over a validator that reads only that state and records write
  intents. No I/O happens here.
- *store* (async): apply the intents in one transaction. Single-use things are claimed with
  conditional writes; a lost claim turns the answer into ``invalid_grant``, and nothing is sent
  before the store succeeded.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import asyncpg
from oauthlib.common import add_params_to_uri
from oauthlib.oauth2.rfc6749.errors import (
    FatalClientError,
    InvalidClientIdError,
    InvalidRedirectURIError,
    MismatchingRedirectURIError,
    MissingClientIdError,
    MissingRedirectURIError,
    OAuth2Error,
)
from starlette.exceptions import HTTPException
from starlette.types import Receive

from authserver.db.store import ClientAuth, Issue, IssuedToken, NewCode, Store
from authserver.models import Client, User
from authserver.oauth.flow import (
    Audit,
    ClaimCode,
    ClearLoginFailures,
    CountAuthFailure,
    CountLoginFailure,
    Endpoint,
    Flow,
    Intent,
    IssueCode,
    IssueTokens,
    Rehash,
    RevokeCodeFamilies,
    RevokeFamily,
    RevokeToken,
    active,
)
from authserver.oauth.introspection import INACTIVE, loaded_claims
from authserver.oauth.params import (
    BadClientAuth,
    BadRequest,
    ClientCredentials,
    client_credentials,
    encode_form,
    parse_form,
    parse_query,
)
from authserver.oauth.responses import Answer, oauth_error, oauth_response
from authserver.resources import Resources
from authserver.security.tokens import TokenKind, token_digest
from authserver.validation import CLIENT_ID, OOB_URI, login_throttle_key
from authserver.web.body import read_asgi_body

log = logging.getLogger("authserver.oauth")

MAX_BODY = 16 * 1024  # bytes; an OAuth form is a few hundred
FORM = "application/x-www-form-urlencoded"

Triple = tuple[dict[str, str], str, int]


class Inbound(NamedTuple):
    """What the token, revocation and introspection endpoints read of an HTTP request."""

    query: bytes
    content_type: str | None
    content_length: str | None
    authorization: str | None
    receive: Receive  # the body is read only once the headers passed
    state: dict[str, Any]  # the request's state: the access log reads client_id from it


class Parsed(NamedTuple):
    params: dict[str, str]
    credentials: ClientCredentials

    def __repr__(self) -> str:
        # The parameters hold passwords, secrets, codes and tokens: names only.
        return f"Parsed(params={sorted(self.params)}, credentials={self.credentials!r})"


_RETRY_AFTER = b"retry-after"


async def handle(res: Resources, inbound: Inbound, endpoint: Endpoint) -> Answer:
    """Serve one POST to the token, revocation or introspection endpoint."""
    try:
        parsed = await _parse(inbound)
    except BadRequest as exc:
        return oauth_error(400, "invalid_request", exc.description)
    except BadClientAuth as exc:
        return oauth_error(401, "invalid_client", exc.description)
    if endpoint == "token" and "grant_type" not in parsed.params:
        # RFC 6749 §5.2: a missing required parameter is invalid_request (oauthlib would fall
        # back to its default grant and answer unsupported_grant_type).
        return oauth_error(400, "invalid_request", "the grant_type parameter is required")
    flow = Flow(endpoint, parsed.credentials)
    await _load(res, flow, parsed.params)
    if flow.client_locked and flow.credentials.secret is not None:
        # RFC 6749 §2.3.1: brute force against a client's secret pauses its authentication,
        # the right secret included, until the window passes.
        retry = [(_RETRY_AFTER, str(res.settings.login_lockout).encode())]
        return oauth_error(429, "invalid_client", "too many failed attempts; retry later", retry)
    if flow.client is not None:
        inbound.state["client_id"] = flow.client.client_id  # for the access log
    decided = decide(res, flow, parsed.params)
    if flow.introspected_active is not None:
        res.metrics.introspected(flow.introspected_active)
    if flow.intents and not await _store(res, flow):
        return oauth_error(400, "invalid_grant", "the grant has already been used")
    return _INACTIVE_ANSWER if decided is _INACTIVE else oauth_response(*decided)


# load


async def _parse(inbound: Inbound) -> Parsed:
    if inbound.query:
        raise BadRequest("URL query parameters are not allowed")
    media_type, _, options = (inbound.content_type or "").partition(";")
    charset = options.strip().lower()
    if media_type.strip().lower() != FORM or charset not in ("", "charset=utf-8"):
        raise BadRequest(f"the body must be {FORM} (UTF-8)")
    try:
        body = await read_asgi_body(inbound.receive, inbound.content_length, MAX_BODY)
    except HTTPException:
        raise BadRequest(f"the body must be at most {MAX_BODY} bytes") from None
    params = parse_form(body)
    return Parsed(params, client_credentials(inbound.authorization, params))


async def _load(res: Resources, flow: Flow, params: dict[str, str]) -> None:
    store, codec = res.store, res.tokens
    client_id = flow.credentials.client_id
    if client_id is None or not CLIENT_ID.fullmatch(client_id):
        return  # no such client: oauthlib refuses the request before it asks about anything else
    await _authenticate(res, flow, client_id)
    if flow.endpoint != "token":
        # Introspection and revocation: no query at all for a token whose MAC does not verify.
        token = params.get("token")
        if token is not None and codec.kind_of(token) in (TokenKind.ACCESS, TokenKind.REFRESH):
            flow.token = await res.lookups(token_digest(token))
        return
    grant_type = params.get("grant_type")
    if grant_type == "authorization_code":
        code = params.get("code")
        if code is not None and codec.kind_of(code) is TokenKind.CODE:
            flow.code = await store.code_by_digest(token_digest(code))
    elif grant_type == "refresh_token":
        refresh = params.get("refresh_token")
        if refresh is not None and codec.kind_of(refresh) is TokenKind.REFRESH:
            flow.token = await res.lookups(token_digest(refresh))
    elif grant_type == "password":
        await _load_user(res, flow, params)


async def _authenticate(res: Resources, flow: Flow, client_id: str) -> None:
    """Find the client and check the presented secret now; the validator reads the verdict.

    A cached client is trusted only to say yes: any other verdict is checked again against
    the database, so a secret rotated in a moment ago works at once.
    """
    loaded, cached = await res.clients.get(client_id)
    _judge(res, flow, loaded)
    if cached and not _approved(flow):
        _judge(res, flow, await res.clients.fresh(client_id))


def _approved(flow: Flow) -> bool:
    """Would this client pass authentication as loaded?"""
    client = flow.client
    if client is None or not client.active:
        return False
    if flow.credentials.secret is None:
        return client.is_public
    return flow.client_authenticated and not flow.client_locked


def _judge(res: Resources, flow: Flow, loaded: ClientAuth | None) -> None:
    if loaded is None:
        flow.client, flow.client_locked, flow.client_authenticated = None, False, False
        return
    flow.client, flow.client_locked = loaded.client, loaded.locked
    secret = flow.credentials.secret
    flow.client_authenticated = secret is not None and res.secrets.verify(secret, loaded.secrets)


async def _load_user(res: Resources, flow: Flow, params: dict[str, str]) -> None:
    client = flow.client
    trusted = client is not None and (flow.client_authenticated or client.is_public)
    username, password = params.get("username"), params.get("password")
    if not trusted or client is None or not client.password_grant or not username or not password:
        return  # oauthlib refuses the request before it asks about the user: no argon2 spent
    # The login page's pause for an account holds here too, or this would be the way round it.
    if await res.store.login_locked([login_throttle_key(username)]):
        flow.account_paused = True
        return
    user = await res.store.user_by_login(username)
    # Unknown users are verified against a dummy hash: the answer takes as long either way.
    verified = await res.passwords.verify(user.password_hash if user else None, password)
    flow.user = user
    flow.password_ok = verified.ok
    flow.new_password_hash = verified.new_hash


# decide


# What oauthlib's IntrospectEndpoint answers a valid request with.
_INTROSPECTION_HEADERS = {
    "Content-Type": "application/json",
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
}


_INACTIVE: Triple = (_INTROSPECTION_HEADERS, json.dumps(INACTIVE), 200)
_INACTIVE_ANSWER = oauth_response(*_INACTIVE)  # the commonest answer of all, built once


def decide(res: Resources, flow: Flow, params: dict[str, str]) -> Triple:
    """Run oauthlib over the loaded flow; synchronous, no I/O."""
    token = params.get("token")
    if flow.endpoint == "introspect" and token and flow.client_passes():
        # The hottest request there is, and one oauthlib has nothing to refuse in: its
        # IntrospectEndpoint checks the method, the query, the token and the client (all
        # settled by now), then answers the validator's claims. Building its Request costs
        # more than the rest of the decision, so the answer is made here, the same way
        # (tests/test_bridge.py compares the two).
        claims = loaded_claims(flow, token, res.settings.issuer)
        if claims is None:
            return _INACTIVE
        return _INTROSPECTION_HEADERS, json.dumps({"active": True, **claims}), 200
    endpoints = res.oauth
    call: Callable[..., Triple]
    if flow.endpoint == "token":
        call, path = endpoints.token.create_token_response, "/oauth2/token"
    elif flow.endpoint == "revoke":
        call, path = endpoints.revocation.create_revocation_response, "/oauth2/revoke"
    else:
        call, path = endpoints.introspection.create_introspect_response, "/oauth2/introspect"
    uri = res.settings.issuer + path
    # Only the parsed, deduplicated parameters reach oauthlib, and no credentials in headers.
    headers = {"Content-Type": FORM}
    with active(flow):
        try:
            return call(uri, "POST", encode_form(params), headers)
        except OAuth2Error as exc:
            return dict(exc.headers or {}), exc.json, exc.status_code
        except ValueError:
            return {}, _error_json("invalid_request", "the request could not be parsed"), 400
        except NotImplementedError:
            log.exception("the validator broke oauthlib's contract")
            return {}, _error_json("server_error", "an unexpected error occurred"), 500


def _error_json(error: str, description: str) -> str:
    return json.dumps({"error": error, "error_description": description})


# store


class _ClaimLost(Exception):
    def __init__(self, revoke: RevokeCodeFamilies | RevokeFamily, audit: Audit) -> None:
        super().__init__(audit.kind)
        self.revoke = revoke
        self.audit = audit


async def _store(res: Resources, flow: Flow) -> bool:
    """Apply the flow's intents in one transaction; False when a single-use claim was lost."""
    issue = _issue_alone(res, flow)
    if issue is not None:
        # Tokens with nothing to claim first (client credentials, above all): one statement
        # is atomic by itself, without BEGIN and COMMIT, and may carry other requests' too.
        await res.issues(issue)
        return True
    try:
        await _in_transaction(res, lambda tx: _apply(res, tx, flow))
    except _ClaimLost as exc:
        lost = exc
    else:
        return True
    # Someone else redeemed it first: what was issued from it can no longer be trusted.
    await _in_transaction(res, lambda tx: _after_lost_claim(tx, lost))
    return False


def _issue_alone(res: Resources, flow: Flow) -> Issue | None:
    """The flow's issue, if issuing is all it writes and needs no grant created first."""
    if len(flow.intents) != 1 or flow.client is None:
        return None
    intent = flow.intents[0]
    if not isinstance(intent, IssueTokens) or intent.rotated_from is not None:
        return None
    if intent.user_id is not None and intent.grant_id is None:
        return None  # the password grant's grant may have to be created
    return _issue_of(res, flow.client.client_id, intent, intent.grant_id)


async def _after_lost_claim(tx: Store, lost: _ClaimLost) -> None:
    await _revoke(tx, lost.revoke)
    await tx.audit(
        lost.audit.kind,
        client_id=lost.audit.client_id,
        user_id=lost.audit.user_id,
        detail=lost.audit.detail,
    )


_RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
_ATTEMPTS = 3


async def _in_transaction(res: Resources, work: Callable[[Store], Awaitable[None]]) -> None:
    """Run ``work`` in one transaction, again from the start if PostgreSQL aborted it.

    Concurrent revocations of one family (refresh reuse, code replay, RFC 7009) can lock the
    same rows in different orders; PostgreSQL then aborts one of them (40P01). The rolled-back
    transaction wrote nothing, so running it again is safe (checklist R-04, R-11).
    """
    for attempt in range(_ATTEMPTS):
        try:
            async with res.store.transaction() as tx:
                await work(tx)
            return
        except _RETRYABLE:
            if attempt == _ATTEMPTS - 1:
                raise


async def _apply(res: Resources, tx: Store, flow: Flow) -> None:
    client_id = flow.client.client_id if flow.client is not None else None
    # Claims first: if one is lost, nothing else of this request may be written.
    for intent in flow.intents:
        await _claim(tx, intent, client_id)
    for intent in flow.intents:
        if isinstance(intent, IssueTokens):
            assert client_id is not None
            await _issue(res, tx, client_id, intent)
        elif isinstance(intent, (RevokeCodeFamilies, RevokeFamily)):
            await _revoke(tx, intent)
        elif isinstance(intent, RevokeToken):
            revoked = await tx.revoke_token(intent.digest, intent.client_id)
            if revoked is not None and revoked[0] == "refresh" and revoked[1] is not None:
                # RFC 7009 §2.1: revoking a refresh token revokes the access tokens it begot.
                await tx.revoke_family(revoked[1])
        elif isinstance(intent, CountAuthFailure):
            await tx.record_login_failure(
                f"client:{intent.client_id}",
                res.settings.client_max_failures,
                res.settings.login_lockout,
            )
        elif isinstance(intent, CountLoginFailure):
            await tx.record_login_failure(
                intent.throttle_key, res.settings.login_max_failures, res.settings.login_lockout
            )
        elif isinstance(intent, ClearLoginFailures):
            await tx.clear_login_failures(intent.throttle_key)
        elif isinstance(intent, Rehash):
            await tx.set_password_hash(intent.user_id, intent.password_hash)
        elif isinstance(intent, Audit):
            await tx.audit(
                intent.kind,
                client_id=intent.client_id,
                user_id=intent.user_id,
                detail=intent.detail,
            )


async def _claim(tx: Store, intent: Intent, client_id: str | None) -> None:
    if isinstance(intent, ClaimCode):
        if not await tx.claim_code(intent.digest):
            raise _ClaimLost(
                RevokeCodeFamilies(intent.digest), Audit("code.replay_detected", client_id)
            )
    elif isinstance(intent, IssueTokens) and intent.rotated_from is not None:
        claimed = await tx.claim_refresh_token(intent.rotated_from)
        if not claimed:
            assert intent.family_id is not None  # refresh tokens always belong to a family
            raise _ClaimLost(
                RevokeFamily(intent.family_id),
                Audit("refresh.reuse_detected", client_id, intent.user_id),
            )


async def _issue(res: Resources, tx: Store, client_id: str, intent: IssueTokens) -> None:
    grant_id = intent.grant_id
    if intent.user_id is not None and grant_id is None:
        # The password grant never shows a consent page; it still leaves a grant the user can
        # see and revoke among their authorized apps.
        grant_id = await tx.ensure_grant(intent.user_id, client_id, intent.scope.split())
    await tx.issue_tokens([_issue_of(res, client_id, intent, grant_id)])


def _issue_of(res: Resources, client_id: str, intent: IssueTokens, grant_id: int | None) -> Issue:
    settings = res.settings
    tokens = [
        IssuedToken(
            token_digest(intent.access_token), "access", intent.scope, settings.access_token_ttl
        )
    ]
    if intent.refresh_token is not None:
        scope = intent.scope if intent.refresh_scope is None else intent.refresh_scope
        tokens.append(
            IssuedToken(
                token_digest(intent.refresh_token), "refresh", scope, settings.refresh_token_ttl
            )
        )
    return Issue(
        grant_type=intent.grant_type,
        client_id=client_id,
        user_id=intent.user_id,
        grant_id=grant_id,
        family_id=intent.family_id,
        code_digest=intent.code_digest,
        tokens=tuple(tokens),
    )


async def _revoke(tx: Store, intent: RevokeCodeFamilies | RevokeFamily) -> None:
    if isinstance(intent, RevokeFamily):
        await tx.revoke_family(intent.family_id)
    else:
        await tx.revoke_code_families(intent.code_digest)


# The authorization endpoint (RFC 6749 §4.1.1 to §4.1.2)


class ErrorPage(Exception):
    """The request cannot be answered at the client: show a page, never redirect (§4.1.2.1)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class ErrorRedirect:
    location: str


@dataclass(frozen=True)
class Checked:
    """A validated authorization request."""

    client: Client
    scopes: tuple[str, ...]
    redirect_uri: str
    state: str | None


@dataclass(frozen=True)
class Issued:
    """A code, sent back by redirect or, for the oob URN, shown to copy."""

    location: str | None
    code: str | None


_FATAL_REPEATS = frozenset({"client_id", "redirect_uri"})


async def load_authorization(res: Resources, query: bytes, user: User | None) -> Flow:
    """The flow for an authorization request: its client and the signed-in user, if any."""
    flow = Flow("authorize", ClientCredentials(None, None, "none"), user=user)
    try:
        params, _ = parse_query(query)
    except BadRequest:
        return flow  # check_authorization shows the error page
    client_id = params.get("client_id")
    if client_id is not None and CLIENT_ID.fullmatch(client_id):
        # Read afresh, not from the cache: an authorization request is rare beside the token
        # endpoint's, and its checks (redirect URIs above all) need the client as it is now.
        loaded = await res.clients.fresh(client_id)
        flow.client = loaded.client if loaded is not None else None
    return flow


def check_authorization(res: Resources, flow: Flow, query: bytes) -> Checked | ErrorRedirect:
    """Validate an authorization request with oauthlib; raise ErrorPage for what is fatal."""
    try:
        params, repeated = parse_query(query)
    except BadRequest as exc:
        raise ErrorPage(f"The request is malformed: {exc.description}.") from None
    if repeated & _FATAL_REPEATS:
        raise ErrorPage("The request repeats client_id or redirect_uri.")
    # Repeated values are dropped before oauthlib sees them: a repeated state is not echoed.
    clean = {name: value for name, value in params.items() if name not in repeated}
    uri = _authorize_uri(res, clean)
    with active(flow):
        try:
            scopes, credentials = res.oauth.authorization.validate_authorization_request(
                uri, "GET", None, {}
            )
        except FatalClientError as exc:
            raise ErrorPage(_fatal_message(exc)) from None
        except OAuth2Error as exc:
            return _error_redirect(res, exc.redirect_uri, exc.error, exc.description, exc.state)
        except ValueError:
            raise ErrorPage("The request is malformed.") from None
    assert flow.client is not None  # validate_client_id accepted it
    state = credentials.get("state")
    if repeated:
        return _error_redirect(
            res,
            credentials["redirect_uri"],
            "invalid_request",
            f"repeated parameter: {sorted(repeated)[0][:40]}",
            state,
        )
    return Checked(flow.client, tuple(scopes), credentials["redirect_uri"], state)


def deny(res: Resources, checked: Checked) -> ErrorRedirect:
    return _error_redirect(
        res, checked.redirect_uri, "access_denied", "the user denied the request", checked.state
    )


def error_for(res: Resources, checked: Checked, error: str, description: str) -> ErrorRedirect:
    return _error_redirect(res, checked.redirect_uri, error, description, checked.state)


async def issue_code(res: Resources, flow: Flow, query: bytes, checked: Checked) -> Issued:
    """Create the code for a request the user approved, store it, and say where it goes."""
    params, _ = parse_query(query)
    uri = _authorize_uri(res, params)
    with active(flow):
        try:
            headers, _, _ = res.oauth.authorization.create_authorization_response(
                uri, "GET", None, {}, list(checked.scopes), {}
            )
        except FatalClientError as exc:
            raise ErrorPage(_fatal_message(exc)) from None
    issued = [intent for intent in flow.intents if isinstance(intent, IssueCode)]
    if len(issued) != 1 or flow.client is None:
        location = headers.get("Location")  # oauthlib answered with an error redirect
        return Issued(_with_iss(res, location) if location else None, None)
    intent = issued[0]
    async with res.store.transaction() as tx:
        grant_id = await tx.ensure_grant(intent.user_id, flow.client.client_id, checked.scopes)
        await tx.insert_code(
            NewCode(
                digest=token_digest(intent.code),
                client_id=flow.client.client_id,
                user_id=intent.user_id,
                grant_id=grant_id,
                redirect_uri=intent.redirect_uri,
                scope=intent.scope,
                code_challenge=intent.code_challenge,
                expires_in=res.settings.code_ttl,
            )
        )
        await tx.audit("code.issued", client_id=flow.client.client_id, user_id=intent.user_id)
    if checked.redirect_uri == OOB_URI:
        return Issued(None, intent.code)
    return Issued(_with_iss(res, headers["Location"]), None)


def _authorize_uri(res: Resources, params: dict[str, str]) -> str:
    return f"{res.settings.issuer}/oauth2/authorize?{encode_form(params)}"


def _with_iss(res: Resources, location: str) -> str:
    # RFC 9207 §2: every authorization response names its issuer.
    located: str = add_params_to_uri(location, [("iss", res.settings.issuer)])
    return located


def _error_redirect(
    res: Resources, redirect_uri: str | None, error: str, description: str | None, state: Any
) -> ErrorRedirect:
    if not redirect_uri or redirect_uri == OOB_URI:
        raise ErrorPage(description or error)
    params = [("error", error)]
    if description:
        params.append(("error_description", description))
    if state:
        params.append(("state", str(state)))
    params.append(("iss", res.settings.issuer))
    location: str = add_params_to_uri(redirect_uri, params)
    return ErrorRedirect(location)


def _fatal_message(exc: FatalClientError) -> str:
    if isinstance(exc, (InvalidClientIdError, MissingClientIdError)):
        return "The application is unknown or no longer active."
    if isinstance(exc, (MismatchingRedirectURIError, InvalidRedirectURIError)):
        return "The redirect URI is not one the application registered."
    if isinstance(exc, MissingRedirectURIError):
        return "The request has no redirect URI, and the application registered several."
    return "The request is malformed."
