"""Writing an import into PostgreSQL: stage by stage, in batches, resumable, idempotent.

Each batch is one multi-row statement (``unnest`` of arrays) and goes in one transaction with
the stage's new position (``phraseanet_import``), so after an interruption the next run starts
after the last batch that was written, and a batch is never half there. Every statement is an
upsert keyed like its source, so running again converges to the same rows, without duplicates.

argon2 wrapping (D1) is the expensive part: it runs on every core (argon2-cffi releases the GIL,
so a thread per core computes in parallel), and only for users whose stored source differs from
the one being imported; a password of authserver's own (upgraded at sign-in, set by the
platform) is never replaced.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from argon2 import PasswordHasher

from authserver.db.phraseanet import PhraseanetQueries
from authserver.db.rows import ImportedClient, ImportedGrant, ImportedToken, ImportedUser
from authserver.db.store import Store
from authserver.phraseanet.mapping import ClientPlan, GrantPlan, TokenPlan, UserPlan
from authserver.phraseanet.progress import Progress
from authserver.security.client_secrets import SecretHasher

STAGES = ("users", "clients", "grants", "tokens")

T = TypeVar("T")
R = TypeVar("R")
# Told after each batch is committed (stage, rows): an operator's metrics, or a test's hook.
OnBatch = Callable[[str, int], None]


@dataclass(frozen=True)
class Batches:
    """Rows per statement, by stage."""

    users: int = 1000
    clients: int = 500
    grants: int = 5000
    tokens: int = 10000


def chunks(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Run:
    """The run being written: its start, and where each stage stands."""

    def __init__(self, started_at: datetime, positions: dict[str, str], finished: set[str]):
        self.started_at = started_at
        self.positions = positions
        self.finished = finished

    @property
    def resumed(self) -> bool:
        return any(self.positions.values()) or bool(self.finished)

    @classmethod
    async def open(cls, store: Store) -> Run:
        """Resume the last run if it did not finish, else start a new one."""
        progress = await store.phraseanet.progress()
        if set(progress) != set(STAGES) or all(stage.finished for stage in progress.values()):
            await store.phraseanet.start_run(STAGES)
            progress = await store.phraseanet.progress()
        return cls(
            progress["users"].started_at,
            {stage: state.position for stage, state in progress.items()},
            {stage for stage, state in progress.items() if state.finished},
        )


class Writer:
    def __init__(
        self,
        store: Store,
        run: Run,
        secrets: SecretHasher,
        hasher: PasswordHasher,
        progress: Progress,
        batches: Batches,
        on_batch: OnBatch | None,
    ) -> None:
        self._store = store
        self._run = run
        self._secrets = secrets
        self._hasher = hasher
        self._progress = progress
        self._batches = batches
        self._on_batch = on_batch
        self._pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    async def users(self, plans: Sequence[UserPlan]) -> None:
        after = int(self._run.positions["users"] or -1)
        todo = sorted((p for p in plans if int(p.user_id) > after), key=lambda p: int(p.user_id))
        self._progress.stage("users", len(plans))
        self._progress.advance(len(plans) - len(todo))
        for batch in chunks(todo, self._batches.users):
            users = await self._user_rows(batch)
            await self._commit(
                "users", batch[-1].user_id, len(batch), PhraseanetQueries.write_users, users
            )

    async def _user_rows(self, batch: Sequence[UserPlan]) -> list[ImportedUser]:
        states = await self._store.phraseanet.password_states([p.user_id for p in batch])
        wrap = []
        for plan in batch:
            state = states.get(plan.user_id)
            if plan.legacy is not None and (
                state is None or state.legacy_source != plan.legacy.source
            ):
                wrap.append(plan)
        loop = asyncio.get_running_loop()
        hashes = await asyncio.gather(
            *(
                loop.run_in_executor(self._pool, self._hasher.hash, plan.legacy.stored)
                for plan in wrap
                if plan.legacy is not None
            )
        )
        wrapped = dict(zip((plan.user_id for plan in wrap), hashes, strict=True))
        rows = []
        for plan in batch:
            legacy = plan.legacy
            keep = legacy is not None and plan.user_id not in wrapped
            rows.append(
                ImportedUser(
                    user_id=plan.user_id,
                    login=plan.login,
                    email=plan.email,
                    display_name=plan.display_name,
                    password_hash=wrapped.get(plan.user_id),
                    legacy_scheme=None if legacy is None else legacy.scheme,
                    legacy_salt=None if legacy is None else legacy.salt,
                    legacy_source=None if legacy is None else legacy.source,
                    keep_password=keep,
                    created_at=plan.created_at,
                    updated_at=plan.updated_at,
                )
            )
        return rows

    async def clients(self, plans: Sequence[ClientPlan], owner: tuple[str, str] | None) -> None:
        """Applications, after the synthetic owner (id, login) if one is needed (D6)."""
        after = int(self._run.positions["clients"] or -1)
        todo = sorted(
            (p for p in plans if p.application_id > after), key=lambda p: p.application_id
        )
        self._progress.stage("clients", len(plans))
        self._progress.advance(len(plans) - len(todo))
        if owner is not None and todo:
            await self._store.phraseanet.write_owner(*owner)
        for batch in chunks(todo, self._batches.clients):
            rows = []
            for plan in batch:
                digest = self._secrets.digest(plan.secret) if plan.secret is not None else None
                rows.append(
                    ImportedClient(
                        client_id=plan.client_id,
                        name=plan.name,
                        description=plan.description,
                        website=plan.website,
                        client_type=plan.client_type,
                        redirect_uris=" ".join(plan.redirect_uris),
                        owner_id=plan.owner_id,
                        password_grant=plan.password_grant,
                        require_pkce=plan.require_pkce,
                        key_id=None if digest is None else digest.key_id,
                        digest=None if digest is None else digest.digest,
                        created_at=plan.created_at,
                        updated_at=plan.updated_at,
                    )
                )
            await self._commit(
                "clients",
                str(batch[-1].application_id),
                len(batch),
                PhraseanetQueries.write_clients,
                rows,
            )

    async def grants(self, plans: Sequence[tuple[tuple[int, int], GrantPlan]]) -> None:
        """Grants keyed by (Phraseanet user id, application id), in that order."""
        position = self._run.positions["grants"]
        after = tuple(int(part) for part in position.split(":")) if position else (-1, -1)
        todo = sorted((item for item in plans if item[0] > after), key=lambda item: item[0])
        self._progress.stage("grants", len(plans))
        self._progress.advance(len(plans) - len(todo))
        for batch in chunks(todo, self._batches.grants):
            grants = [
                ImportedGrant(plan.user_id, plan.client_id, plan.created_at, plan.revoked)
                for _, plan in batch
            ]
            last = batch[-1][0]
            await self._commit(
                "grants",
                f"{last[0]}:{last[1]}",
                len(batch),
                PhraseanetQueries.write_grants,
                grants,
            )

    async def tokens(self, plans: Sequence[TokenPlan], position: str, read: int) -> None:
        """One batch of tokens: ``read`` source rows up to the key ``position``."""
        rows = [
            ImportedToken(p.digest, p.client_id, p.user_id, p.developer, p.created_at, p.expires_at)
            for p in plans
        ]
        await self._commit("tokens", position, read, PhraseanetQueries.write_tokens, rows)

    async def finish(self, stage: str) -> None:
        async with self._store.transaction() as tx:
            await tx.phraseanet.advance(stage, self._run.positions[stage], finished=True)
        self._run.finished.add(stage)

    async def _commit(
        self,
        stage: str,
        position: str,
        count: int,
        write: Callable[[PhraseanetQueries, Sequence[R]], Awaitable[object]],
        rows: Sequence[R],
    ) -> None:
        async with self._store.transaction() as tx:
            await write(tx.phraseanet, rows)
            await tx.phraseanet.advance(stage, position, finished=False)
        self._run.positions[stage] = position
        self._progress.advance(count)
        if self._on_batch is not None:
            self._on_batch(stage, count)
