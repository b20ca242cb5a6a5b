"""What the login and consent pages share across replicas: sessions and consent-form nonces."""

from __future__ import annotations

from datetime import datetime

from authserver.db.executor import QueryGroup
from authserver.models import User


class SessionQueries(QueryGroup):
    __slots__ = ()

    async def insert(self, sid_digest: bytes, user_id: str, *, ttl: int) -> None:
        await self._db.execute(self._q["insert_session"], sid_digest, user_id, float(ttl))

    async def user(self, sid_digest: bytes) -> tuple[User, datetime] | None:
        """The user a live session is signed in as, and when they signed in."""
        row = await self._db.fetchrow(self._q["session_user"], sid_digest)
        return None if row is None else (User.from_row(row), row["login_at"])

    async def delete(self, sid_digest: bytes) -> None:
        await self._db.execute(self._q["delete_session"], sid_digest)

    async def delete_of_user(self, user_id: str) -> int:
        """Sign a user out of every browser; how many sessions ended."""
        return int(await self._db.fetchval(self._q["delete_user_sessions"], user_id))

    async def claim_consent_nonce(self, nonce: str, *, ttl: int) -> bool:
        """Use a consent form once; False when it was already submitted."""
        return (
            await self._db.fetchval(self._q["claim_consent_nonce"], nonce, float(ttl)) is not None
        )
