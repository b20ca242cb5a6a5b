"""What the store returns: frozen rows, typed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal
from uuid import UUID

from asyncpg import Record

ClientType = Literal["web", "desktop"]


@dataclass(frozen=True)
class User:
    user_id: str
    login: str
    email: str | None
    display_name: str
    password_hash: str | None = field(repr=False)
    created_at: datetime
    updated_at: datetime

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

    @classmethod
    def from_row(cls, row: Record) -> CodeRow:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


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

    @property
    def active(self) -> bool:
        """RFC 7662 §2.2 "active": usable right now."""
        return self.live and not self.revoked and not self.consumed and self.client_active

    @classmethod
    def from_row(cls, row: Record) -> TokenRow:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})
