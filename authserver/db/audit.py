"""The audit trail: security-relevant events, with ids rather than foreign keys."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from authserver.db.executor import QueryGroup, dumps
from authserver.models import AuditEvent


class AuditQueries(QueryGroup):
    __slots__ = ()

    async def record(
        self,
        kind: str,
        *,
        client_id: str | None = None,
        user_id: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        await self._db.execute(
            self._q["insert_audit_event"], kind, client_id, user_id, dumps(detail)
        )
        self._audited(kind, detail or {})

    async def page(
        self,
        *,
        user_id: str | None,
        client_id: str | None,
        kind: str | None,
        since: datetime | None,
        until: datetime | None,
        before: int | None,
        limit: int,
    ) -> list[AuditEvent]:
        """Events newest first, by the filters given (None: any)."""
        rows = await self._db.fetch(
            self._q["list_audit_events"], user_id, client_id, kind, since, until, before, limit
        )
        return [AuditEvent.from_row(row) for row in rows]
