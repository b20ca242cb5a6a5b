"""What the store returns: frozen rows, typed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal
from uuid import UUID

from asyncpg import Record

ClientType = Literal["web", "desktop"]
LegacyScheme = Literal["phraseanet-hmac-sha512", "phraseanet-sha256"]


@dataclass(frozen=True)
class LegacyPassword:
    """A Phraseanet hash wrapped in argon2 (D1): how to compute its hex from a password again."""

    scheme: LegacyScheme
    salt: str | None = field(repr=False)  # Phraseanet's nonce; None concatenates as ""
    source: bytes = field(repr=False)  # legacy_source: which source row was wrapped

    @classmethod
    def from_row(cls, row: Record) -> LegacyPassword | None:
        # Rows of queries that name their columns may not carry these.
        scheme = row.get("legacy_scheme")
        if scheme is None:
            return None
        return cls(scheme, row["legacy_salt"], row["legacy_source"])


@dataclass(frozen=True)
class User:
    user_id: str
    login: str
    email: str | None
    display_name: str
    password_hash: str | None = field(repr=False)
    created_at: datetime
    updated_at: datetime
    legacy: LegacyPassword | None = field(default=None, repr=False)  # a wrapped Phraseanet hash
    email_verified: bool = False  # as the platform says (OpenID Connect Core §5.1)

    @classmethod
    def from_row(cls, row: Record) -> User:
        return cls(
            user_id=row["user_id"],
            login=row["login"],
            email=row["email"],
            display_name=row["display_name"],
            password_hash=row["password_hash"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            legacy=LegacyPassword.from_row(row),
            email_verified=row["email_verified"],
        )


@dataclass(frozen=True)
class Client:
    client_id: str
    name: str
    description: str
    website: str
    client_type: ClientType
    redirect_uris: tuple[str, ...]
    owner_id: str
    password_grant: bool
    introspection: bool
    active: bool
    created_at: datetime
    updated_at: datetime
    require_pkce: bool = True  # D17: desktop (public) clients always do
    id_token_signed_response_alg: str = "RS256"  # noqa: S105 -- Registration §2, no secret
    post_logout_redirect_uris: tuple[str, ...] = ()  # RP-Initiated Logout §3.1, exact match
    token_exchange: bool = False  # may exchange tokens it holds (RFC 8693)
    resource_server: bool = False  # an exchanged token may be addressed to it (RFC 8707)
    device_grant: bool = False  # RFC 8628: the owner enabled the device authorization grant

    @property
    def is_public(self) -> bool:
        """RFC 8252: desktop apps cannot keep a secret, so they authenticate with PKCE only."""
        return self.client_type == "desktop"

    @classmethod
    def from_row(cls, row: Record) -> Client:
        return cls(
            client_id=row["client_id"],
            name=row["name"],
            description=row["description"],
            website=row["website"],
            client_type=row["client_type"],
            redirect_uris=tuple(row["redirect_uris"]),
            owner_id=row["owner_id"],
            password_grant=row["password_grant"],
            introspection=row["introspection"],
            active=row["active"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            require_pkce=row["require_pkce"],
            id_token_signed_response_alg=row["id_token_signed_response_alg"],
            post_logout_redirect_uris=tuple(row["post_logout_redirect_uris"]),
            token_exchange=row["token_exchange"],
            resource_server=row["resource_server"],
            device_grant=row["device_grant"],
        )


@dataclass(frozen=True)
class AuthorizedApp:
    """A user's grant to a client, with what the platform shows on "my applications"."""

    client_id: str
    name: str
    description: str
    website: str
    owner_id: str
    scopes: tuple[str, ...]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Record) -> AuthorizedApp:
        return cls(
            client_id=row["client_id"],
            name=row["name"],
            description=row["description"],
            website=row["website"],
            owner_id=row["owner_id"],
            scopes=tuple(row["scopes"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


@dataclass(frozen=True)
class CodeRow:
    """An authorization code as the token endpoint sees it."""

    digest: bytes
    client_id: str
    user_id: str
    grant_id: int
    redirect_uri: str | None
    scope: str
    code_challenge: str | None
    code_challenge_method: str | None
    consumed: bool
    live: bool  # within its lifetime, by the database clock
    nonce: str | None = None  # the authorization request's (OpenID Connect Core §3.1.2.1)
    auth_time: datetime | None = None  # when the user signed in for it

    @classmethod
    def from_row(cls, row: Record) -> CodeRow:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


DeviceStatus = Literal["pending", "approved", "denied"]


@dataclass(frozen=True)
class DeviceCodeRow:
    """A device code as a poll of the token endpoint left it (RFC 8628 §3.4, §3.5)."""

    digest: bytes
    client_id: str
    scope: str
    status: DeviceStatus
    user_id: str | None
    grant_id: int | None
    auth_time: datetime | None
    consumed: bool
    live: bool  # within its lifetime, by the database clock
    too_fast: bool  # this poll came sooner than the interval allows (slow_down)
    poll_interval: int  # seconds, as it stands after this poll

    @classmethod
    def from_row(cls, row: Record) -> DeviceCodeRow:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class PendingDevice:
    """A device waiting for a user's decision, as the verification page finds it."""

    digest: bytes
    client_id: str
    scope: str

    @classmethod
    def from_row(cls, row: Record) -> PendingDevice:
        return cls(row["digest"], row["client_id"], row["scope"])


@dataclass(frozen=True)
class TokenRow:
    """A stored token, with what introspection answers and what refresh checks."""

    digest: bytes
    kind: str  # "access" | "refresh"
    client_id: str
    user_id: str | None
    grant_id: int | None
    family_id: UUID | None
    scope: str
    developer: bool
    created_at: datetime
    expires_at: datetime | None
    username: str | None
    consumed: bool
    revoked: bool
    live: bool  # unexpired by the database clock
    client_active: bool
    legacy: bool = False  # imported from Phraseanet (D9): looked up apart, see oauth/legacy
    auth_time: datetime | None = None  # the sign-in its family began with (OpenID Connect)
    audience: str | None = None  # RFC 8693: the resource server it was exchanged for
    actors: tuple[str, ...] = ()  # RFC 8693 §4.1: who exchanged their way to it, latest first

    @property
    def active(self) -> bool:
        """RFC 7662 §2.2 "active": usable right now."""
        return self.live and not self.revoked and not self.consumed and self.client_active

    @classmethod
    def from_row(cls, row: Record) -> TokenRow:
        values = {name: row[name] for name in cls.__dataclass_fields__}
        values["actors"] = tuple(values["actors"])
        return cls(**values)


@dataclass(frozen=True)
class SecretDigest:
    """A client secret as stored: its keyed digest, and which server key made it."""

    key_id: str
    digest: bytes = field(repr=False)


FailureKind = Literal["secret", "guess", "introspection"]
FAILURE_KINDS: tuple[FailureKind, ...] = ("secret", "guess", "introspection")


@dataclass(frozen=True)
class ClientAuth:
    """What client authentication needs to know about a client, as loaded."""

    client: Client
    secrets: tuple[SecretDigest, ...]  # digests of the secrets valid when loaded
    # For each kind of failure counted against the client: seconds until the first of its
    # pauses ends, if some address (or the client as a whole) is paused (checklist S-29).
    paused_for: dict[FailureKind, float]
    stale_in: float | None  # seconds until a secret expires or a pause ends, if either will

    @classmethod
    def from_row(cls, row: Record) -> ClientAuth:
        digests = tuple(
            SecretDigest(key_id, digest)
            for key_id, digest in zip(row["secret_key_ids"], row["secret_digests"], strict=True)
        )
        paused: dict[FailureKind, float] = {}
        for kind in FAILURE_KINDS:
            seconds = row[f"{kind}_paused_for"]
            if seconds is not None:
                paused[kind] = seconds
        changes = [t for t in (row["secret_expires_in"], *paused.values()) if t is not None]
        return cls(
            Client.from_row(row),
            digests,
            paused,
            stale_in=min(changes) if changes else None,
        )


@dataclass(frozen=True)
class AuditEvent:
    event_id: int
    occurred_at: datetime
    kind: str
    client_id: str | None
    user_id: str | None
    detail: str  # JSON text, as stored

    @classmethod
    def from_row(cls, row: Record) -> AuditEvent:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})
