"""Schema migrations: ordered ``sql/migrations/NNNN_name.sql`` files, each applied once.

Applied migrations are recorded with a checksum, so an edited migration is caught instead of
silently diverging. A session-level advisory lock serializes replicas that start together.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from authserver.db.executor import Connection
from authserver.errors import MigrationError
from authserver.files import data_dir

_LOCK_KEY = 0x6175_7468_7376_7201  # "authsvr\x01": one fixed key for every replica
_FILE = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def shipped_migrations(directory: Path | None = None) -> list[Migration]:
    directory = directory or data_dir("sql") / "migrations"
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE.fullmatch(path.name)
        if match is None:
            raise MigrationError(f"migration file name not of the form NNNN_name.sql: {path.name}")
        sql = path.read_text(encoding="utf-8")
        migrations.append(Migration(int(match.group(1)), match.group(2), sql))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migration files share a version number")
    return migrations


async def migrate(conn: Connection, migrations: list[Migration] | None = None) -> list[str]:
    """Apply what is missing; return the names applied (empty when up to date).

    A schema already up to date is only read, so a server can start against a database that
    is read-only for now (a replica after a failover): it is not ready until writes work.
    """
    migrations = shipped_migrations() if migrations is None else migrations
    # A migration may rewrite a large table: the request bounds of the pool do not apply.
    await conn.execute("SET statement_timeout = 0; SET lock_timeout = 0")
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        applied = await _applied(conn)
        _check(applied, migrations)
        pending = [m for m in migrations if m.version not in applied]
        if not pending:
            return []
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version    integer PRIMARY KEY,
                   name       text NOT NULL,
                   checksum   text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = []
        for migration in pending:
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            done.append(f"{migration.version:04d}_{migration.name}")
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)


async def _applied(conn: Connection) -> dict[int, str]:
    """The checksum of each migration the database has, by version."""
    if await conn.fetchval("SELECT to_regclass('schema_migrations')") is None:
        return {}
    rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
    return {row["version"]: row["checksum"] for row in rows}


def _check(applied: dict[int, str], migrations: list[Migration]) -> None:
    known = {m.version: m for m in migrations}
    unknown = sorted(set(applied) - set(known))
    if unknown:
        raise MigrationError(
            f"the database has migrations this version does not know: {unknown}; "
            "is an older authserver running against a newer schema?"
        )
    for version, checksum in applied.items():
        migration = known[version]
        if checksum != migration.checksum:
            raise MigrationError(
                f"migration {migration.version:04d}_{migration.name} was changed "
                "after it was applied"
            )
