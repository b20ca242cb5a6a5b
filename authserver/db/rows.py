"""What the store is given to write: one small type per row or per change, named by field.

The multi-row inserts take ``NamedTuple`` rows whose field order is the order of the columns
the query unnests (a test holds the two together); everything else is keyword arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID


class IssuedToken(NamedTuple):
    digest: bytes
    kind: str  # "access" | "refresh"
    scope: str
    expires_in: int | None  # seconds from now by the database clock; None never expires
    not_after: datetime | None = None  # the token expires then at the latest


@dataclass(frozen=True)
class Issue:
    """What one token request issues (an access token, perhaps a refresh token, under one grant),
    or an owner's developer token (grant type "developer": never expires)."""

    grant_type: str
    client_id: str
    user_id: str | None
    grant_id: int | None
    family_id: UUID | None
    code_digest: bytes | None
    tokens: tuple[IssuedToken, ...]
    auth_time: datetime | None = None  # the sign-in the family began with (OpenID Connect)

    @property
    def clients_own(self) -> bool:
        """Is this a client's own issue (client credentials: no user, nothing it hangs on, each
        token expiring and uncapped; a developer token never expires)? Those have a leaner
        statement (``issue_client_tokens``)."""
        return (
            self.user_id is None
            and self.grant_id is None
            and self.family_id is None
            and self.code_digest is None
            and self.auth_time is None
            and all(t.expires_in is not None and t.not_after is None for t in self.tokens)
        )


class TokenInsert(NamedTuple):
    """One row of ``issue_tokens``'s ``unnest(...) AS t(...)``, in its column order."""

    digest: bytes
    kind: str
    client_id: str
    user_id: str | None
    grant_id: int | None
    family_id: UUID | None
    code_digest: bytes | None
    scope: str
    expires_in: float | None
    developer: bool
    not_after: datetime | None
    auth_time: datetime | None


class AuditInsert(NamedTuple):
    """One row of ``issue_tokens``'s ``unnest(...) AS a(...)``: a ``token.issued`` event."""

    client_id: str
    user_id: str | None
    detail: str  # JSON


class ClientTokenInsert(NamedTuple):
    """One row of ``issue_client_tokens``'s ``unnest(...) AS c(...)``, in its column order."""

    digest: bytes
    kind: str
    client_id: str
    scope: str
    expires_in: float


class ClientAuditInsert(NamedTuple):
    """One row of ``issue_client_tokens``'s ``unnest(...) AS e(...)``."""

    client_id: str
    detail: str  # JSON


@dataclass(frozen=True)
class NewCode:
    digest: bytes
    client_id: str
    user_id: str
    grant_id: int
    redirect_uri: str | None  # None when the request relied on the registered default
    scope: str
    code_challenge: str | None
    expires_in: int
    nonce: str | None = None  # OpenID Connect: echoed in the ID token
    auth_time: datetime | None = None  # when the user signed in for it


@dataclass(frozen=True)
class ExchangedToken:
    """An access token issued by token exchange (RFC 8693), as ``issue_exchanged_token``
    takes it."""

    digest: bytes = field(repr=False)
    subject_digest: bytes = field(repr=False)
    client_id: str  # the acting client
    user_id: str
    grant_id: int
    scope: str
    expires_in: int  # seconds, capped by the subject's expiry
    audience: str | None
    actors: tuple[str, ...]
    detail: dict[str, Any]  # the token.issued event's


@dataclass(frozen=True)
class ClientFields:
    """The editable columns of a client, as a whole (PATCH merges into this first)."""

    name: str
    description: str
    website: str
    redirect_uris: tuple[str, ...]
    password_grant: bool
    introspection: bool
    active: bool
    require_pkce: bool
    id_token_signed_response_alg: str = "RS256"  # noqa: S105 -- an algorithm, no secret
    post_logout_redirect_uris: tuple[str, ...] = ()
    token_exchange: bool = False
    resource_server: bool = False
    device_grant: bool = False


class ImportedUser(NamedTuple):
    """One row of ``phraseanet_write_users``'s ``unnest(...) AS n(...)``, in its column order."""

    user_id: str
    login: str
    email: str | None
    display_name: str
    password_hash: str | None  # argon2id of the legacy hex (D1)
    legacy_scheme: str | None
    legacy_salt: str | None
    legacy_source: bytes | None
    keep_password: bool  # the stored hash came from the same source: leave it
    created_at: datetime
    updated_at: datetime


class ImportedClient(NamedTuple):
    """One row of ``phraseanet_write_clients``'s ``unnest(...) AS n(...)``."""

    client_id: str
    name: str
    description: str
    website: str
    client_type: str
    redirect_uris: str  # joined by spaces
    owner_id: str
    password_grant: bool
    require_pkce: bool
    key_id: str | None  # the secret's digest, when the application has a secret
    digest: bytes | None
    created_at: datetime
    updated_at: datetime


class ImportedGrant(NamedTuple):
    """One row of ``phraseanet_write_grants``'s ``unnest(...) AS n(...)``."""

    user_id: str
    client_id: str
    created_at: datetime
    revoked: bool


class ImportedToken(NamedTuple):
    """One row of ``phraseanet_write_tokens``'s ``unnest(...) AS n(...)``."""

    digest: bytes
    client_id: str
    user_id: str
    developer: bool
    created_at: datetime
    expires_at: datetime | None
