"""Applications ("clients") and their secret digests."""

from __future__ import annotations

import asyncpg

from authserver.db.executor import QueryGroup
from authserver.db.rows import ClientFields
from authserver.errors import Conflict, NotFound
from authserver.models import Client, ClientAuth, SecretDigest


class ClientQueries(QueryGroup):
    __slots__ = ()

    async def insert(
        self, client_id: str, *, owner_id: str, client_type: str, fields: ClientFields
    ) -> Client:
        try:
            row = await self._db.fetchrow(
                self._q["insert_client"],
                client_id,
                fields.name,
                fields.description,
                fields.website,
                client_type,
                list(fields.redirect_uris),
                owner_id,
                fields.password_grant,
                fields.introspection,
                fields.require_pkce,
                fields.id_token_signed_response_alg,
                list(fields.post_logout_redirect_uris),
                fields.token_exchange,
                fields.resource_server,
                fields.device_grant,
            )
        except asyncpg.ForeignKeyViolationError:
            raise NotFound(f"no user with id {owner_id!r} to own the application") from None
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == "identifier_shared":
                raise Conflict("this client id is a user's id") from None
            raise Conflict("an application with this client id exists") from None
        assert row is not None
        return Client.from_row(row)

    async def get(self, client_id: str, *, lock: bool = False) -> Client:
        """One client; ``lock`` holds its row until the transaction ends."""
        row = await self._db.fetchrow(self._q["lock_client" if lock else "get_client"], client_id)
        if row is None:
            raise NotFound(f"no application with client id {client_id!r}")
        return Client.from_row(row)

    async def page(self, owner_id: str | None, *, after: str, limit: int) -> list[Client]:
        """Clients (of one owner) in client id order, after a cursor."""
        rows = await self._db.fetch(self._q["list_clients"], owner_id, after, limit)
        return [Client.from_row(row) for row in rows]

    async def update(self, client_id: str, fields: ClientFields) -> Client:
        row = await self._db.fetchrow(
            self._q["update_client"],
            client_id,
            fields.name,
            fields.description,
            fields.website,
            list(fields.redirect_uris),
            fields.password_grant,
            fields.introspection,
            fields.active,
            fields.require_pkce,
            fields.id_token_signed_response_alg,
            list(fields.post_logout_redirect_uris),
            fields.token_exchange,
            fields.resource_server,
            fields.device_grant,
        )
        if row is None:
            raise NotFound(f"no application with client id {client_id!r}")
        return Client.from_row(row)

    async def delete(self, client_id: str) -> None:
        if await self._db.fetchval(self._q["delete_client"], client_id) is None:
            raise NotFound(f"no application with client id {client_id!r}")

    async def add_secret(self, client_id: str, secret: SecretDigest) -> None:
        await self._db.execute(
            self._q["insert_client_secret"], client_id, secret.key_id, secret.digest
        )

    async def retire_secrets(self, client_id: str, *, overlap: int) -> None:
        """Start a rotation: the current secret keeps working ``overlap`` seconds more."""
        await self._db.execute(self._q["retire_client_secrets"], client_id, float(overlap))

    async def for_auth(self, client_id: str) -> ClientAuth | None:
        """A client as client authentication needs it, or None if there is no such client."""
        row = await self._db.fetchrow(self._q["client_for_auth"], client_id)
        return None if row is None else ClientAuth.from_row(row)
