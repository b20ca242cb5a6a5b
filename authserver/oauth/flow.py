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
from typing import Any, Literal
from uuid import UUID

from authserver.models import Client, CodeRow, TokenRow, User
from authserver.oauth.params import ClientCredentials

Endpoint = Literal["token", "revoke", "introspect", "authorize"]


@dataclass(frozen=True)
class IssueTokens:
    grant_type: str
    # The tokens themselves: never in a repr, a log or a traceback.
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    scope: str
    user_id: str | None
    grant_id: int | None  # None with a user: the password grant creates or reuses the grant
    family_id: UUID | None
    code_digest: bytes | None = None  # the code being redeemed, if any
    rotated_from: bytes | None = None  # the refresh token being rotated out, if any
    # RFC 6749 §6: a rotated refresh token keeps the scope of the one it replaces, even when
    # the access token was narrowed; None means the same scope as the access token.
    refresh_scope: str | None = None


@dataclass(frozen=True)
class IssueCode:
    code: str = field(repr=False)
    user_id: str
    redirect_uri: str | None  # None when the request relied on the one registered URI
    scope: str
    code_challenge: str | None


@dataclass(frozen=True)
class ClaimCode:
    digest: bytes


@dataclass(frozen=True)
class RevokeFamily:
    """Refresh-token reuse: everything descended from that authorization dies."""

    family_id: UUID


@dataclass(frozen=True)
class RevokeCodeFamilies:
    """Code replay: what the first redemption issued dies (RFC 6749 §4.1.2)."""

    code_digest: bytes


@dataclass(frozen=True)
class RevokeToken:
    digest: bytes
    client_id: str


@dataclass(frozen=True)
class CountAuthFailure:
    """A client failed to authenticate with a secret: count it towards a pause (S-29)."""

    client_id: str


@dataclass(frozen=True)
class CountLoginFailure:
    """A wrong password for an account: count it towards pausing its sign-ins."""

    throttle_key: str


@dataclass(frozen=True)
class ClearLoginFailures:
    """A right password: the account's count starts over."""

    throttle_key: str


@dataclass(frozen=True)
class Rehash:
    user_id: str
    password_hash: str


@dataclass(frozen=True)
class Audit:
    kind: str
    client_id: str | None = None
    user_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


Intent = (
    IssueTokens
    | IssueCode
    | ClaimCode
    | RevokeFamily
    | RevokeCodeFamilies
    | RevokeToken
    | CountAuthFailure
    | CountLoginFailure
    | ClearLoginFailures
    | Rehash
    | Audit
)


@dataclass
class Flow:
    endpoint: Endpoint
    credentials: ClientCredentials
    client: Client | None = None
    client_authenticated: bool = False  # a confidential client proved its secret
    client_locked: bool = False  # paused after too many failed authentications
    code: CodeRow | None = None
    token: TokenRow | None = None  # the refresh token presented, or the revoked/introspected one
    user: User | None = None  # password grant: the user named; authorize: the signed-in user
    password_ok: bool = False
    account_paused: bool = False  # password grant: too many wrong passwords for the account
    new_password_hash: str | None = field(default=None, repr=False)
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
