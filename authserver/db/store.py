"""The one way into PostgreSQL: named queries in, typed rows out, asyncpg errors translated.

A ``Store`` wraps either the pool (each call takes a connection for itself) or one connection
inside a transaction (``async with store.transaction() as tx``), and groups its queries by
what they are about: ``store.users``, ``tx.tokens``… The same groups serve both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Generic, TypeVar, overload

import asyncpg

from authserver.db.audit import AuditQueries
from authserver.db.clients import ClientQueries
from authserver.db.device_codes import DeviceCodeQueries
from authserver.db.executor import AuditObserver, Connection, Executor, QueryGroup
from authserver.db.kept import KeptConnection
from authserver.db.keys import SigningKeyQueries
from authserver.db.maintenance import MaintenanceQueries
from authserver.db.phraseanet import PhraseanetQueries
from authserver.db.queries import Queries, load_queries
from authserver.db.sessions import SessionQueries
from authserver.db.throttles import ThrottleQueries
from authserver.db.tokens import CodeQueries, TokenQueries
from authserver.db.users import GrantQueries, UserQueries

G = TypeVar("G", bound=QueryGroup)


class _Group(Generic[G]):
    """A store's group of queries, made on first use and kept for the store's lifetime."""

    def __init__(self, kind: type[G]) -> None:
        self._kind = kind

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, store: None, owner: type) -> _Group[G]: ...
    @overload
    def __get__(self, store: Store, owner: type) -> G: ...
    def __get__(self, store: Store | None, owner: type) -> G | _Group[G]:
        if store is None:
            return self
        group = self._kind(store._db, store._q, store._on_audit)
        store.__dict__[self._name] = group  # the next read finds the instance attribute
        return group


class Store:
    users = _Group(UserQueries)
    grants = _Group(GrantQueries)
    clients = _Group(ClientQueries)
    tokens = _Group(TokenQueries)
    codes = _Group(CodeQueries)
    device_codes = _Group(DeviceCodeQueries)
    sessions = _Group(SessionQueries)
    throttles = _Group(ThrottleQueries)
    audit = _Group(AuditQueries)
    maintenance = _Group(MaintenanceQueries)
    signing_keys = _Group(SigningKeyQueries)
    phraseanet = _Group(PhraseanetQueries)

    def __init__(
        self,
        executor: Executor,
        queries: Queries | None = None,
        on_audit: AuditObserver | None = None,
    ) -> None:
        self._db = executor
        self._q = queries if queries is not None else load_queries()
        self._on_audit = on_audit

    def _bound(self, conn: Connection) -> Store:
        return Store(conn, self._q, self._on_audit)

    def kept(self, conn: KeptConnection) -> Store:
        """The same queries through a batch sender's kept connection (authserver.db.kept)."""
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
        elif isinstance(self._db, KeptConnection):
            raise TypeError("a kept connection sends single statements only")
        else:
            async with self._db.transaction():
                yield self

    async def ping(self) -> bool:
        """Whether the database answers and takes writes."""
        return bool(await self._db.fetchval(self._q["ping"]))
