"""What every group of queries runs on: the pool, one connection inside a transaction, or a
batch sender's kept connection (authserver.db.kept)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from authserver.db.kept import KeptConnection
from authserver.db.queries import Queries

Connection = asyncpg.Connection | PoolConnectionProxy
Executor = asyncpg.Pool | Connection | KeptConnection
# Told of every audit event the store writes, with its detail (the metrics count them there).
AuditObserver = Callable[[str, Mapping[str, Any]], None]


class QueryGroup:
    """The queries of one table or concern; the Store hands each group its executor."""

    __slots__ = ("_db", "_on_audit", "_q")

    def __init__(self, db: Executor, queries: Queries, on_audit: AuditObserver | None) -> None:
        self._db = db
        self._q = queries
        self._on_audit = on_audit

    def _audited(self, kind: str, detail: Mapping[str, Any]) -> None:
        if self._on_audit is not None:
            self._on_audit(kind, detail)


def columns(rows: Sequence[NamedTuple], fields: int) -> list[list[Any]]:
    """The rows as one list per field, in the row type's field order: what a multi-row
    ``unnest($1::…[], $2::…[], …)`` takes (the query names its columns in that same order)."""
    if not rows:
        return [[] for _ in range(fields)]
    return [list(column) for column in zip(*rows, strict=True)]


def dumps(detail: Mapping[str, Any] | None) -> str:
    return json.dumps(dict(detail or {}))
