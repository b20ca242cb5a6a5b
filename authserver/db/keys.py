"""The keys that sign ID tokens, their private parts encrypted (authserver.oidc.keys)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from asyncpg import Record

from authserver.db.executor import QueryGroup


@dataclass(frozen=True)
class NewKey:
    kid: str
    alg: str
    public_jwk: str  # JSON
    private_jwk: bytes = field(repr=False)  # encrypted
    key_id: str


@dataclass(frozen=True)
class StoredKey(NewKey):
    """A key as stored: a new key and the dates of its life."""

    created_at: datetime
    active_from: datetime
    retired_at: datetime | None
    expires_at: datetime | None

    @classmethod
    def from_row(cls, row: Record) -> StoredKey:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


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
        await self._db.execute(
            self._q["insert_signing_keys"],
            [key.kid for key in keys],
            [key.alg for key in keys],
            [key.public_jwk for key in keys],
            [key.private_jwk for key in keys],
            [key.key_id for key in keys],
            starts_in,
        )
