"""Users, and their grants (Phraseanet's "accounts": a user's consent to a client)."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from authserver.db.executor import QueryGroup
from authserver.errors import Conflict, NotFound
from authserver.models import AuthorizedApp, User
from authserver.validation import normalize_login


class UserQueries(QueryGroup):
    __slots__ = ()

    async def upsert(
        self,
        user_id: str,
        *,
        login: str,
        email: str | None,
        display_name: str,
        password_hash: str | None,
        keep_password: bool,
        email_verified: bool = False,
    ) -> tuple[User, bool]:
        """Create or replace a user; the flag says whether it was created."""
        try:
            row = await self._db.fetchrow(
                self._q["upsert_user"],
                user_id,
                login,
                email,
                display_name,
                password_hash,
                keep_password,
                email_verified,
            )
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == "identifier_shared":
                raise Conflict("this user id is an application's client id") from None
            raise Conflict("another user already has this login") from None
        assert row is not None
        return User.from_row(row), bool(row["inserted"])

    async def find(self, user_id: str) -> User | None:
        row = await self._db.fetchrow(self._q["get_user"], user_id)
        return None if row is None else User.from_row(row)

    async def get(self, user_id: str) -> User:
        row = await self._db.fetchrow(self._q["get_user"], user_id)
        if row is None:
            raise NotFound(f"no user with id {user_id!r}")
        return User.from_row(row)

    async def locked(self, user_id: str) -> User | None:
        """The user, locked until the transaction ends, or None when there is none."""
        row = await self._db.fetchrow(self._q["lock_user"], user_id)
        return None if row is None else User.from_row(row)

    async def by_login(self, login: str) -> User | None:
        if len(login) > 255 or "\x00" in login:
            return None  # no stored login looks like this, and PostgreSQL refuses NUL
        row = await self._db.fetchrow(self._q["user_by_login"], normalize_login(login))
        return None if row is None else User.from_row(row)

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        await self._db.execute(self._q["set_password_hash"], user_id, password_hash)

    async def upgrade_legacy_password(
        self, user_id: str, password_hash: str, source: bytes
    ) -> None:
        """Replace the wrapped Phraseanet hash that came from ``source`` by ``password_hash``."""
        await self._db.execute(self._q["upgrade_legacy_password"], user_id, password_hash, source)

    async def delete(self, user_id: str) -> None:
        if await self._db.fetchval(self._q["delete_user"], user_id) is None:
            raise NotFound(f"no user with id {user_id!r}")


class GrantQueries(QueryGroup):
    __slots__ = ()

    async def ensure(self, user_id: str, client_id: str, scopes: Sequence[str]) -> int:
        """The user's grant for the client, created or revived, with at least ``scopes``."""
        row = await self._db.fetchrow(self._q["ensure_grant"], user_id, client_id, list(scopes))
        assert row is not None
        return int(row["grant_id"])

    async def active(self, user_id: str, client_id: str) -> tuple[int, tuple[str, ...]] | None:
        """The unrevoked grant's id and scopes, if there is one."""
        row = await self._db.fetchrow(self._q["active_grant"], user_id, client_id)
        return None if row is None else (int(row["grant_id"]), tuple(row["scopes"]))

    async def of_user(self, user_id: str) -> list[AuthorizedApp]:
        rows = await self._db.fetch(self._q["list_user_grants"], user_id)
        return [AuthorizedApp.from_row(row) for row in rows]

    async def revoke(self, user_id: str, client_id: str) -> None:
        if await self._db.fetchval(self._q["revoke_grant"], user_id, client_id) is None:
            raise NotFound(f"user {user_id!r} has no active grant for {client_id!r}")
