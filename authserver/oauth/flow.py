"""One request's OAuth state: what the load phase fetched and what the decide phase wants written.

The validator reads a ``Flow`` and appends intents to it; it never touches the database. The
flow reaches the validator through a context variable rather than through oauthlib's request
object, whose attributes a caller can pre-set with body parameters (``client=…``, ``user=…``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from authserver.models import Client, ClientAuth, CodeRow, DeviceCodeRow, TokenRow, User
from authserver.oauth.intents import Intent
from authserver.oauth.params import ClientCredentials

Endpoint = Literal["token", "revoke", "introspect", "authorize", "userinfo", "device"]


@dataclass(frozen=True)
class Guess:
    """A presented code or token that matched nothing: a failure counted against the client."""

    what: str  # "code", "refresh_token", "device_code", "token" or "subject_token"
    reason: str  # "forged" (its MAC fails), "unknown" (no row), "foreign" (another client's)


@dataclass(slots=True)
class Flow:
    endpoint: Endpoint
    credentials: ClientCredentials
    address: str = ""  # the caller's address, as the HTTP edge saw it
    client: Client | None = None
    auth: ClientAuth | None = None  # the client as authentication loaded it
    client_authenticated: bool = False  # a confidential client proved its secret
    paused_for: float | None = None  # seconds until a pause that refuses this request ends
    guess: Guess | None = None
    code: CodeRow | None = None
    device: DeviceCodeRow | None = None  # the device code polled with (RFC 8628 §3.4)
    # The refresh token presented, the revoked/introspected one, or an exchange's subject token.
    token: TokenRow | None = None
    audience: Client | None = None  # token exchange: the resource server named as audience
    # Password grant: the user the sign-in policy signed in; authorize: the signed-in user.
    user: User | None = None
    sign_in_paused_for: int | None = None  # password grant: sign-in paused for this long
    auth_time: datetime | None = None  # authorize: when the signed-in user signed in
    remembered_scopes: tuple[str, ...] | None = None  # authorize: what the user's grant holds
    introspected_active: bool | None = None  # what introspection answered, for the metrics
    intents: list[Intent] = field(default_factory=list)

    def record(self, intent: Intent) -> None:
        self.intents.append(intent)

    def client_passes(self) -> bool:
        """Client authentication's verdict: an active client proved its secret and, at the
        introspection endpoint, is one allowed to introspect."""
        client = self.client
        if client is None or not client.active or not self.client_authenticated:
            return False
        return self.endpoint != "introspect" or client.introspection


_current: ContextVar[Flow] = ContextVar("authserver_oauth_flow")


def current() -> Flow:
    return _current.get()


@contextmanager
def active(flow: Flow) -> Iterator[Flow]:
    token = _current.set(flow)
    try:
        yield flow
    finally:
        _current.reset(token)
