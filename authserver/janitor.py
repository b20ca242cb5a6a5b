"""The janitor: deletes what has expired, in bounded batches, one replica at a time.

Each DELETE takes at most ``janitor_batch`` rows found through an index on ``expires_at`` (or
``occurred_at``), so a table of millions is emptied in many short statements that never hold
locks for long, and the server keeps answering meanwhile. A PostgreSQL advisory lock makes the
replicas take turns instead of deleting the same rows at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from authserver.config import Settings
from authserver.db.store import Store
from authserver.periodic import every

log = logging.getLogger("authserver.janitor")

LOCK_KEY = 0x6175_7468_7376_7202  # "authsvr\x02", distinct from the migration lock


@dataclass
class Report:
    deleted: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    ran: bool = True  # False when another replica held the lock

    @property
    def total(self) -> int:
        return sum(self.deleted.values())


def _purges(settings: Settings) -> list[tuple[str, str, tuple[object, ...]]]:
    """(what, query, extra arguments) for every kind of leftover."""
    retention = float(settings.audit_retention)
    return [
        ("tokens", "purge_tokens", ()),
        ("authorization_codes", "purge_codes", ()),
        ("device_codes", "purge_device_codes", ()),
        ("client_secrets", "purge_client_secrets", ()),
        ("browser_sessions", "purge_sessions", ()),
        ("login_failures", "purge_login_failures", ()),
        ("client_failures", "purge_client_failures", ()),
        ("signing_keys", "purge_signing_keys", ()),
        ("consent_nonces", "purge_consent_nonces", ()),
        ("grants", "purge_revoked_grants", (retention,)),
        ("audit_events", "purge_audit_events", (retention,)),
    ]


async def run_once(
    store: Store,
    settings: Settings,
    on_batch: Callable[[str, int], None] | None = None,
) -> Report:
    """One full pass; ``on_batch(what, rows)`` hears about every batch (metrics)."""
    started = time.monotonic()
    async with store.connection() as conn:
        if not await conn.maintenance.try_lock(LOCK_KEY):
            return Report(ran=False)
        try:
            report = Report()
            for what, query, args in _purges(settings):
                report.deleted[what] = 0
                while True:
                    rows = await conn.maintenance.purge(query, settings.janitor_batch, *args)
                    report.deleted[what] += rows
                    if on_batch is not None and rows:
                        on_batch(what, rows)
                    if rows < settings.janitor_batch:
                        break
                    await asyncio.sleep(0)  # let the requests sharing this loop run
        finally:
            await conn.maintenance.unlock(LOCK_KEY)
    report.seconds = time.monotonic() - started
    if report.total:
        log.info(
            "janitor deleted %d rows in %.1f s: %s",
            report.total,
            report.seconds,
            ", ".join(f"{what}={rows}" for what, rows in report.deleted.items() if rows),
        )
    return report


async def run_forever(
    store: Store, settings: Settings, on_batch: Callable[[str, int], None] | None = None
) -> None:
    """Run a pass every ``janitor_interval`` seconds until cancelled; failures wait a turn."""
    await every(
        settings.janitor_interval, lambda: run_once(store, settings, on_batch), "janitor run failed"
    )
