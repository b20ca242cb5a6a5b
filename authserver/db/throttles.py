"""Failure counters shared by every replica: sign-in attempts, user-code lookups and client
authentications."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from authserver.db.executor import QueryGroup, columns
from authserver.models import FailureKind


class ClientFailures(NamedTuple):
    """One row of ``record_client_failures``'s ``unnest(...) AS n(...)``, in its column order."""

    client_id: str
    kind: FailureKind
    address: str  # "" for a counter kept for the client as a whole
    failures: int
    max_failures: int


class ThrottleQueries(QueryGroup):
    __slots__ = ()

    async def claim(self, limits: Sequence[tuple[str, int]], *, window: int) -> float | None:
        """Count an attempt against each (key, limit) before it is checked; None when counted,
        else the seconds until the pause that refuses it ends."""
        keys = [key for key, _ in limits]
        maxima = [limit for _, limit in limits]
        paused: float | None = await self._db.fetchval(
            self._q["claim_attempts"], keys, maxima, float(window)
        )
        return paused

    async def release(self, account: str, address: str, *, address_limit: int) -> None:
        """The attempt succeeded: clear the account's count, give the address its attempt back."""
        await self._db.execute(self._q["release_attempt"], account, address, address_limit)

    async def give_back(self, key: str, *, limit: int) -> None:
        """The attempt counted against ``key`` succeeded: it no longer counts."""
        await self._db.execute(self._q["give_back_attempt"], key, limit)

    async def record_client_failures(
        self, counted: Sequence[ClientFailures], *, window: int
    ) -> None:
        """Add failures to clients' counters; one that reaches its limit pauses for ``window``."""
        await self._db.execute(
            self._q["record_client_failures"],
            *columns(counted, len(ClientFailures._fields)),
            float(window),
        )

    async def client_paused_for(
        self, client_id: str, kind: FailureKind, address: str
    ) -> float | None:
        """Seconds left of the client's pause of this kind from this address, if paused."""
        paused: float | None = await self._db.fetchval(
            self._q["client_paused_for"], client_id, kind, address
        )
        return paused
