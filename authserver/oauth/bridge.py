"""The one place where async meets sync: load → decide → store, for the token, revocation,
introspection and device authorization endpoints.

- *load* (async, authserver.oauth.load): from the parsed request, work out the client, the grant
  and the keys, and fetch those rows; verify a user's password off the event loop.
- *decide* (sync, authserver.oauth.decide): oauthlib over a validator that reads only that state
  and records write intents. No I/O happens here.
- *store* (async, authserver.oauth.apply): apply the intents in one transaction. Single-use
  things are claimed with conditional writes; a lost claim turns the answer into
  ``invalid_grant``, and nothing is sent before the store succeeded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from authserver.answer import Answer
from authserver.models import FailureKind
from authserver.oauth.apply import Applier
from authserver.oauth.decide import Decider
from authserver.oauth.exchange import TOKEN_EXCHANGE
from authserver.oauth.flow import Endpoint, Flow
from authserver.oauth.guesses import Guesses
from authserver.oauth.load import Loader, guess_address
from authserver.oauth.params import ClientCredentials
from authserver.oauth.responses import oauth_error

_NO_GRANT_TYPE = oauth_error(400, "invalid_request", "the grant_type parameter is required")
_CLAIM_LOST = oauth_error(400, "invalid_grant", "the grant has already been used")
# RFC 8693 §2.2.2: a subject token that is no longer acceptable is invalid_request.
_SUBJECT_GONE = oauth_error(400, "invalid_request", "subject_token was revoked meanwhile")
_NO_USER_CODE = oauth_error(503, "temporarily_unavailable", "no free user code; retry")
_DEVICE_DRAWS = 3


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """A POST to the token, revocation or introspection endpoint, as the HTTP edge parsed it."""

    endpoint: Endpoint
    params: dict[str, str] = field(repr=False)  # passwords, secrets, codes and tokens
    credentials: ClientCredentials
    address: str  # the client's address, for the sign-in policy


class Handled(NamedTuple):
    answer: Answer
    client_id: str | None  # the client the request came from, for the access log


def paused(error: str, seconds: float) -> Answer:
    """429 with Retry-After (RFC 6585 §4): the caller is paused for ``seconds``."""
    retry = str(max(1, round(seconds))).encode()
    return oauth_error(
        429, error, "too many failed attempts; retry later", [(b"retry-after", retry)]
    )


class Bridge:
    def __init__(
        self,
        loader: Loader,
        decider: Decider,
        applier: Applier,
        guesses: Guesses,
        *,
        on_introspected: Callable[[bool], None],
        on_paused: Callable[[str], None],
        on_revoked: Callable[[bytes], None] = lambda digest: None,
    ) -> None:
        self._loader = loader
        self._decider = decider
        self._applier = applier
        self._guesses = guesses
        self._on_introspected = on_introspected
        self._on_paused = on_paused
        self._on_revoked = on_revoked

    async def handle(self, request: TokenRequest) -> Handled:
        params = request.params
        if request.endpoint == "token" and "grant_type" not in params:
            # RFC 6749 §5.2: a missing required parameter is invalid_request (oauthlib would fall
            # back to its default grant and answer unsupported_grant_type).
            return Handled(_NO_GRANT_TYPE, None)
        flow = Flow(request.endpoint, request.credentials, request.address)
        await self._loader.load(flow, params)
        client_id = flow.client.client_id if flow.client is not None else None
        if flow.paused_for is not None:
            # RFC 6749 §2.3.1: brute force against a client's secret pauses its authentication
            # from that address, the right secret included; scanning for codes or tokens
            # pauses the client's requests. Either until the window passes.
            self._on_paused(request.endpoint)
            return Handled(paused("invalid_client", flow.paused_for), client_id)
        if flow.sign_in_paused_for is not None:
            self._on_paused(request.endpoint)
            return Handled(paused("invalid_grant", flow.sign_in_paused_for), client_id)
        answer = self._decider.decide(flow, params)
        if flow.introspected_active is not None:
            self._on_introspected(flow.introspected_active)
        if flow.guess is not None and client_id is not None and _authenticated(flow):
            kind: FailureKind = "introspection" if request.endpoint == "introspect" else "guess"
            self._guesses.note(
                client_id, kind, guess_address(flow), request.endpoint, flow.guess.reason
            )
        if request.endpoint == "device":
            return Handled(await self._device_codes(flow, params, answer), client_id)
        if flow.intents and not await self._applier.apply(flow):
            exchange = params.get("grant_type") == TOKEN_EXCHANGE
            return Handled(_SUBJECT_GONE if exchange else _CLAIM_LOST, client_id)
        if request.endpoint == "revoke" and flow.token is not None:
            # This replica's own answers change at once; every replica's (this one's too)
            # through PostgreSQL's notification, milliseconds later (db/token_cache).
            self._on_revoked(flow.token.digest)
        return Handled(answer, client_id)

    async def _device_codes(self, flow: Flow, params: dict[str, str], answer: Answer) -> Answer:
        """Store the codes of a device authorization answer; a user code that another pending
        device holds is drawn again (rare: one in 2^34 per pending device)."""
        for _ in range(_DEVICE_DRAWS):
            if not flow.intents or await self._applier.apply(flow):
                return answer
            flow.intents.clear()
            answer = self._decider.decide(flow, params)
        return _NO_USER_CODE


def _authenticated(flow: Flow) -> bool:
    """Did the caller prove it is this client (a public one by naming itself)? Failures of
    those that did not are counted as failed authentications, not as guesses."""
    client = flow.client
    if client is None or not client.active:
        return False
    if flow.credentials.secret is None:
        return client.is_public
    return flow.client_authenticated
