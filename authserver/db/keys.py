"""The keys that sign ID tokens, their private parts encrypted (authserver.oidc.keys)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from asyncpg import Record

from authserver.db.executor import QueryGroup


@dataclass(frozen=True)
class StoredKey:
    kid: str
    alg: str
    public_jwk: str  # JSON
    private_jwk: bytes = field(repr=False)  # encrypted
    key_id: str
    created_at: datetime
    active_from: datetime
    retired_at: datetime | None
    expires_at: datetime | None

    @classmethod
    def from_row(cls, row: Record) -> StoredKey:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class NewKey:
    kid: str
    alg: str
    public_jwk: str  # JSON
    private_jwk: bytes = field(repr=False)  # encrypted
    key_id: str


class SigningKeyQueries(QueryGroup):
    __slots__ = ()

    async def published(self) -> tuple[list[StoredKey], datetime | None]:
        """The keys still published, newest first, and the database's clock."""
        rows = await self._db.fetch(self._q["published_signing_keys"])
        return [StoredKey.from_row(row) for row in rows], (rows[0]["now"] if rows else None)

    async def lock(self) -> None:
        """Take the rotation lock until the transaction ends."""
        await self._db.execute(self._q["lock_signing_keys"])

    async def rotate(self, keys: list[NewKey], *, starts_in: float, outlives_by: float) -> None:
        """Retire the signing keys when ``keys`` start signing, ``starts_in`` seconds from now;
        the retired stay published ``outlives_by`` seconds more."""
        await self._db.execute(self._q["retire_signing_keys"], starts_in, outlives_by)
        for key in keys:
            await self._db.execute(
                self._q["insert_signing_key"],
                key.kid,
                key.alg,
                key.public_jwk,
                key.private_jwk,
                key.key_id,
                starts_in,
            )
