"""The one module that runs SQL: named queries in, typed rows out, asyncpg errors translated.

A ``Store`` wraps either the pool (each call takes a connection for itself) or one connection
inside a transaction (``async with store.transaction() as tx``), so the same methods serve both.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from authserver.db.queries import load_queries
from authserver.errors import Conflict, NotFound
from authserver.models import AuthorizedApp, Client, CodeRow, TokenRow, User
from authserver.security.client_secrets import SecretDigest
from authserver.validation import normalize_login

Connection = asyncpg.Connection | PoolConnectionProxy
Executor = asyncpg.Pool | Connection
AuditObserver = Callable[[str, Mapping[str, Any]], None]


@dataclass(frozen=True)
class IssuedToken:
    digest: bytes
    kind: str  # "access" | "refresh"
    scope: str
    expires_in: int | None  # seconds from now by the database clock; None never expires


@dataclass(frozen=True)
class Issue:
    """What one token request issues (an access token, perhaps a refresh token, one grant), or
    an owner's developer token (grant type "developer": never expires)."""

    grant_type: str
    client_id: str
    user_id: str | None
    grant_id: int | None
    family_id: UUID | None
    code_digest: bytes | None
    tokens: tuple[IssuedToken, ...]


@dataclass(frozen=True)
class ClientAuth:
    """What client authentication needs to know about a client, as of ``loaded_at``."""

    client: Client
    secrets: list[SecretDigest]  # digests of the secrets valid when loaded
    locked: bool  # paused after too many failed authentications (checklist S-29)
    stale_in: float | None  # seconds until a secret expires or the pause ends, if either will

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> ClientAuth:
        digests = [
            SecretDigest(key_id, digest)
            for key_id, digest in zip(row["secret_key_ids"], row["secret_digests"], strict=True)
        ]
        changes = [t for t in (row["secret_expires_in"], row["auth_locked_for"]) if t is not None]
        return cls(
            Client.from_row(row),
            digests,
            locked=row["auth_locked_for"] is not None,
            stale_in=min(changes) if changes else None,
        )


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


class Store:
    def __init__(
        self,
        executor: Executor,
        queries: dict[str, str] | None = None,
        on_audit: AuditObserver | None = None,
    ) -> None:
        self._db = executor
        self._q = queries if queries is not None else load_queries()
        self._on_audit = on_audit

    def _bound(self, conn: Connection) -> Store:
        return Store(conn, self._q, self._on_audit)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Store]:
        """A Store on one pooled connection, for work that needs its session (advisory locks).

        The pool does not reset sessions on release (a round trip per query saved), so the
        session state this work may leave behind is reset here.
        """
        if isinstance(self._db, asyncpg.Pool):
            async with self._db.acquire() as conn:
                try:
                    yield self._bound(conn)
                finally:
                    if not conn.is_closed():
                        await conn.reset()
        else:
            yield self

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Store]:
        if isinstance(self._db, asyncpg.Pool):
            async with self._db.acquire() as conn, conn.transaction():
                yield self._bound(conn)
        else:
            async with self._db.transaction():
                yield self

    async def ping(self) -> None:
        await self._db.fetchval(self._q["ping"])

    # users

    async def upsert_user(
        self,
        user_id: str,
        login: str,
        email: str | None,
        display_name: str,
        password_hash: str | None,
        keep_password: bool,
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
            )
        except asyncpg.UniqueViolationError:
            raise Conflict("another user already has this login") from None
        assert row is not None
        return User.from_row(row), bool(row["inserted"])

    async def get_user(self, user_id: str) -> User:
        row = await self._db.fetchrow(self._q["get_user"], user_id)
        if row is None:
            raise NotFound(f"no user with id {user_id!r}")
        return User.from_row(row)

    async def user_by_login(self, login: str) -> User | None:
        if len(login) > 255 or "\x00" in login:
            return None  # no stored login looks like this, and PostgreSQL refuses NUL
        row = await self._db.fetchrow(self._q["user_by_login"], normalize_login(login))
        return None if row is None else User.from_row(row)

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        await self._db.execute(self._q["set_password_hash"], user_id, password_hash)

    async def delete_user(self, user_id: str) -> None:
        if await self._db.fetchval(self._q["delete_user"], user_id) is None:
            raise NotFound(f"no user with id {user_id!r}")

    # clients

    async def insert_client(
        self, client_id: str, owner_id: str, client_type: str, fields: ClientFields
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
            )
        except asyncpg.ForeignKeyViolationError:
            raise NotFound(f"no user with id {owner_id!r} to own the application") from None
        except asyncpg.UniqueViolationError:
            raise Conflict("an application with this client id exists") from None
        assert row is not None
        return Client.from_row(row)

    async def get_client(self, client_id: str, *, lock: bool = False) -> Client:
        row = await self._db.fetchrow(self._q["lock_client" if lock else "get_client"], client_id)
        if row is None:
            raise NotFound(f"no application with client id {client_id!r}")
        return Client.from_row(row)

    async def list_clients(self, owner_id: str | None, after: str, limit: int) -> list[Client]:
        rows = await self._db.fetch(self._q["list_clients"], owner_id, after, limit)
        return [Client.from_row(row) for row in rows]

    async def update_client(self, client_id: str, fields: ClientFields) -> Client:
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
        )
        if row is None:
            raise NotFound(f"no application with client id {client_id!r}")
        return Client.from_row(row)

    async def delete_client(self, client_id: str) -> None:
        if await self._db.fetchval(self._q["delete_client"], client_id) is None:
            raise NotFound(f"no application with client id {client_id!r}")

    async def insert_client_secret(self, client_id: str, secret: SecretDigest) -> None:
        await self._db.execute(
            self._q["insert_client_secret"], client_id, secret.key_id, secret.digest
        )

    async def retire_client_secrets(self, client_id: str, overlap_seconds: int) -> None:
        await self._db.execute(self._q["retire_client_secrets"], client_id, float(overlap_seconds))

    # grants

    async def ensure_grant(self, user_id: str, client_id: str, scopes: Sequence[str]) -> int:
        row = await self._db.fetchrow(self._q["ensure_grant"], user_id, client_id, list(scopes))
        assert row is not None
        return int(row["grant_id"])

    async def list_user_grants(self, user_id: str) -> list[AuthorizedApp]:
        rows = await self._db.fetch(self._q["list_user_grants"], user_id)
        return [AuthorizedApp.from_row(row) for row in rows]

    async def revoke_grant(self, user_id: str, client_id: str) -> None:
        if await self._db.fetchval(self._q["revoke_grant"], user_id, client_id) is None:
            raise NotFound(f"user {user_id!r} has no active grant for {client_id!r}")

    # tokens

    async def issue_tokens(self, issues: Sequence[Issue]) -> None:
        """Store the tokens of these issues, and audit each issue, in one statement."""
        tokens = [(issue, token) for issue in issues for token in issue.tokens]
        details = [{"grant_type": issue.grant_type} for issue in issues]
        await self._db.execute(
            self._q["issue_tokens"],
            [token.digest for _, token in tokens],
            [token.kind for _, token in tokens],
            [issue.client_id for issue, _ in tokens],
            [issue.user_id for issue, _ in tokens],
            [issue.grant_id for issue, _ in tokens],
            [issue.family_id for issue, _ in tokens],
            [issue.code_digest for issue, _ in tokens],
            [token.scope for _, token in tokens],
            [None if token.expires_in is None else float(token.expires_in) for _, token in tokens],
            [issue.grant_type == "developer" for issue, _ in tokens],
            [issue.client_id for issue in issues],
            [issue.user_id for issue in issues],
            [json.dumps(detail) for detail in details],
        )
        if self._on_audit is not None:
            for detail in details:
                self._on_audit("token.issued", detail)

    async def issue_each(self, issues: list[Issue]) -> list[Exception | None]:
        """Concurrent requests' issues in one statement (authserver.db.batches). If PostgreSQL
        refuses it for its data (a client deleted meanwhile), each is tried alone, so one
        request's problem does not become the others'."""
        try:
            await self.issue_tokens(issues)
        except asyncpg.PostgresError:
            if len(issues) == 1:
                raise
        else:
            return [None] * len(issues)
        results: list[Exception | None] = []
        for issue in issues:
            try:
                await self.issue_tokens([issue])
            except asyncpg.PostgresError as exc:
                results.append(exc)
            else:
                results.append(None)
        return results

    async def delete_developer_tokens(self, grant_id: int) -> None:
        await self._db.execute(self._q["delete_developer_tokens"], grant_id)

    # OAuth flows

    async def client_for_auth(self, client_id: str) -> ClientAuth | None:
        """A client as client authentication needs it, or None if there is no such client."""
        row = await self._db.fetchrow(self._q["client_for_auth"], client_id)
        return None if row is None else ClientAuth.from_row(row)

    async def code_by_digest(self, digest: bytes) -> CodeRow | None:
        row = await self._db.fetchrow(self._q["code_by_digest"], digest)
        return None if row is None else CodeRow.from_row(row)

    async def tokens_by_digests(self, digests: list[bytes]) -> list[TokenRow | None]:
        """The token of each digest, or None, in the order asked (authserver.db.batches)."""
        rows = await self._db.fetch(self._q["tokens_by_digests"], digests)
        found = {row["digest"]: TokenRow.from_row(row) for row in rows}
        return [found.get(digest) for digest in digests]

    async def claim_code(self, digest: bytes) -> bool:
        """Consume a code; False when another request (or an earlier one) already did."""
        return await self._db.fetchval(self._q["claim_code"], digest) is not None

    async def claim_refresh_token(self, digest: bytes) -> bool:
        """Rotate a refresh token out; False when it was already used or revoked."""
        row = await self._db.fetchrow(self._q["claim_refresh_token"], digest)
        return row is not None

    async def revoke_family(self, family_id: UUID) -> None:
        await self._db.execute(self._q["revoke_family"], family_id)

    async def revoke_code_families(self, code_digest: bytes) -> None:
        await self._db.execute(self._q["revoke_code_families"], code_digest)

    async def revoke_token(self, digest: bytes, client_id: str) -> tuple[str, UUID | None] | None:
        """Revoke a client's own token; its kind and family, or None if nothing was revoked."""
        row = await self._db.fetchrow(self._q["revoke_token"], digest, client_id)
        return None if row is None else (row["kind"], row["family_id"])

    # browser flow

    async def login_locked(self, keys: Sequence[str]) -> bool:
        return bool(await self._db.fetchval(self._q["login_locked"], list(keys)))

    async def record_login_failure(self, key: str, max_failures: int, window: int) -> None:
        await self._db.execute(self._q["record_login_failure"], key, max_failures, float(window))

    async def clear_login_failures(self, key: str) -> None:
        await self._db.execute(self._q["clear_login_failures"], key)

    async def insert_session(self, sid_digest: bytes, user_id: str, ttl: int) -> None:
        await self._db.execute(self._q["insert_session"], sid_digest, user_id, float(ttl))

    async def session_user(self, sid_digest: bytes) -> User | None:
        row = await self._db.fetchrow(self._q["session_user"], sid_digest)
        return None if row is None else User.from_row(row)

    async def delete_session(self, sid_digest: bytes) -> None:
        await self._db.execute(self._q["delete_session"], sid_digest)

    async def claim_consent_nonce(self, nonce: str, ttl: int) -> bool:
        """Use a consent form once; False when it was already submitted."""
        return (
            await self._db.fetchval(self._q["claim_consent_nonce"], nonce, float(ttl)) is not None
        )

    async def active_grant(
        self, user_id: str, client_id: str
    ) -> tuple[int, tuple[str, ...]] | None:
        row = await self._db.fetchrow(self._q["active_grant"], user_id, client_id)
        return None if row is None else (int(row["grant_id"]), tuple(row["scopes"]))

    async def insert_code(self, code: NewCode) -> None:
        await self._db.execute(
            self._q["insert_code"],
            code.digest,
            code.client_id,
            code.user_id,
            code.grant_id,
            code.redirect_uri,
            code.scope,
            code.code_challenge,
            None if code.code_challenge is None else "S256",
            float(code.expires_in),
        )

    # janitor

    async def try_lock(self, key: int) -> bool:
        """A session-level advisory lock; only meaningful on a Store bound to one connection."""
        return bool(await self._db.fetchval(self._q["janitor_try_lock"], key))

    async def unlock(self, key: int) -> None:
        await self._db.fetchval(self._q["janitor_unlock"], key)

    async def purge(self, query: str, batch: int, *args: object) -> int:
        """Run one ``purge_*`` batch; how many rows it deleted."""
        if not query.startswith("purge_"):
            raise ValueError(f"{query} is not a purge query")
        status = await self._db.execute(self._q[query], batch, *args)
        return int(status.rsplit(" ", 1)[-1])  # "DELETE 5000"

    # audit

    async def audit(
        self,
        kind: str,
        *,
        client_id: str | None = None,
        user_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        await self._db.execute(
            self._q["insert_audit_event"], kind, client_id, user_id, json.dumps(detail or {})
        )
        if self._on_audit is not None:
            self._on_audit(kind, detail or {})
