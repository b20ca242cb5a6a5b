"""What the Phraseanet import reads and writes: its progress, and each stage's batches."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from authserver.db.executor import QueryGroup, columns
from authserver.db.rows import ImportedClient, ImportedGrant, ImportedToken, ImportedUser


class StageProgress(NamedTuple):
    position: str  # the key of the last source row written; "" for none yet
    finished: bool
    started_at: datetime  # when the run began


class PasswordState(NamedTuple):
    legacy_source: bytes | None  # the wrapped source the user holds
    native: bool  # a password of authserver's own, which the import never replaces


def _count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])  # "INSERT 0 5", "UPDATE 5"


class PhraseanetQueries(QueryGroup):
    __slots__ = ()

    async def progress(self) -> dict[str, StageProgress]:
        rows = await self._db.fetch(self._q["phraseanet_progress"])
        return {
            row["stage"]: StageProgress(row["position"], row["finished"], row["started_at"])
            for row in rows
        }

    async def start_run(self, stages: Sequence[str]) -> None:
        await self._db.execute(self._q["phraseanet_start_run"], list(stages))

    async def advance(self, stage: str, position: str, *, finished: bool) -> None:
        await self._db.execute(self._q["phraseanet_advance"], stage, position, finished)

    async def password_states(self, user_ids: Sequence[str]) -> dict[str, PasswordState]:
        rows = await self._db.fetch(self._q["phraseanet_password_states"], list(user_ids))
        return {row["user_id"]: PasswordState(row["legacy_source"], row["native"]) for row in rows}

    async def taken_logins(self, logins: Sequence[str], importing: Sequence[str]) -> set[str]:
        """Which of ``logins`` users other than ``importing`` have, ignoring case."""
        rows = await self._db.fetch(
            self._q["phraseanet_taken_logins"], list(logins), list(importing)
        )
        return {row["login"] for row in rows}

    async def write_users(self, users: Sequence[ImportedUser]) -> None:
        await self._db.execute(
            self._q["phraseanet_write_users"], *columns(users, len(ImportedUser._fields))
        )

    async def write_owner(self, user_id: str, login: str) -> None:
        await self._db.execute(self._q["phraseanet_write_owner"], user_id, login)

    async def write_clients(self, clients: Sequence[ImportedClient]) -> None:
        await self._db.execute(
            self._q["phraseanet_write_clients"], *columns(clients, len(ImportedClient._fields))
        )

    async def write_grants(self, grants: Sequence[ImportedGrant]) -> int:
        """How many were new."""
        return _count(
            await self._db.execute(
                self._q["phraseanet_write_grants"], *columns(grants, len(ImportedGrant._fields))
            )
        )

    async def write_tokens(self, tokens: Sequence[ImportedToken]) -> int:
        """How many were new."""
        return _count(
            await self._db.execute(
                self._q["phraseanet_write_tokens"], *columns(tokens, len(ImportedToken._fields))
            )
        )
