"""The janitor's statements: one replica at a time, bounded batches."""

from __future__ import annotations

from authserver.db.executor import QueryGroup


class MaintenanceQueries(QueryGroup):
    __slots__ = ()

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
