"""Schema migrations, the constraints the schema enforces, and the named queries."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from authserver.db.migrate import Migration, migrate, shipped_migrations
from authserver.db.queries import load_queries, parse_queries
from authserver.db.rows import AuditInsert, ClientAuditInsert, ClientTokenInsert, TokenInsert
from authserver.db.schema import migrated_schema, normalize, shipped_schema
from authserver.errors import MigrationError
from authserver.files import data_dir

TABLES = {
    "users",
    "clients",
    "client_secrets",
    "grants",
    "authorization_codes",
    "tokens",
    "audit_events",
    "login_failures",
    "consent_nonces",
    "browser_sessions",
    "schema_migrations",
}


@pytest.fixture
async def empty_db(empty_database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to an empty database."""
    conn = await asyncpg.connect(empty_database_url)
    try:
        yield conn
    finally:
        await conn.close()


async def catalog(conn: asyncpg.Connection) -> list[Any]:
    """Columns, indexes, constraints and recorded migrations, in a comparable form."""
    columns = await conn.fetch(
        """SELECT table_name, column_name, data_type, is_nullable, column_default
           FROM information_schema.columns WHERE table_schema = 'public'
           ORDER BY table_name, column_name"""
    )
    indexes = await conn.fetch(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1"
    )
    constraints = await conn.fetch(
        """SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
           FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2"""
    )
    recorded = await conn.fetch("SELECT * FROM schema_migrations ORDER BY version")
    return [[tuple(row) for row in rows] for rows in (columns, indexes, constraints, recorded)]


async def held_advisory_locks(conn: asyncpg.Connection) -> int:
    """How many advisory locks any session holds."""
    count: int = await conn.fetchval(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
    )
    return count


# migrating


async def test_migrate_applies_init(empty_db: asyncpg.Connection) -> None:
    """On an empty database, migrate applies every shipped migration, in order, by name."""
    names = [f"{m.version:04d}_{m.name}" for m in shipped_migrations()]
    assert names[0] == "0001_init"
    assert await migrate(empty_db) == names


async def test_migrate_records_checksum(empty_db: asyncpg.Connection) -> None:
    """Each applied migration is recorded with its version, name and checksum."""
    await migrate(empty_db)
    rows = await empty_db.fetch("SELECT version, name, checksum FROM schema_migrations")
    expected = [(m.version, m.name, m.checksum) for m in shipped_migrations()]
    assert [tuple(row) for row in rows] == expected


async def test_migrate_again_is_noop(empty_db: asyncpg.Connection) -> None:
    """Migrating an up-to-date database applies nothing and changes nothing in the catalog."""
    await migrate(empty_db)
    before = await catalog(empty_db)
    assert await migrate(empty_db) == []
    assert await catalog(empty_db) == before


async def test_expected_tables_exist(db: asyncpg.Connection) -> None:
    """The migrated schema has every table the service uses."""
    rows = await db.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
    )
    assert {row["table_name"] for row in rows} >= TABLES


async def test_expiring_tables_index_expires_at(db: asyncpg.Connection) -> None:
    """Every table with an expires_at column has an index led by it, for the janitor."""
    expiring = {
        row["table_name"]
        for row in await db.fetch(
            """SELECT c.table_name FROM information_schema.columns c
               JOIN information_schema.tables t USING (table_schema, table_name)
               WHERE c.table_schema = 'public' AND c.column_name = 'expires_at'
                 AND t.table_type = 'BASE TABLE'"""
        )
    }
    indexed = {
        row["relname"]
        for row in await db.fetch(
            """SELECT t.relname FROM pg_index i
               JOIN pg_class t ON t.oid = i.indrelid
               JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = i.indkey[0]
               WHERE a.attname = 'expires_at'"""
        )
    }
    assert expiring >= {"client_secrets", "authorization_codes", "tokens"}
    assert expiring <= indexed


async def test_edited_migration_refused(db: asyncpg.Connection) -> None:
    """A shipped migration whose SQL changed after it was applied raises MigrationError."""
    edited = [dataclasses.replace(m, sql=m.sql + "\n-- edited\n") for m in shipped_migrations()]
    with pytest.raises(MigrationError, match="0001_init"):
        await migrate(db, edited)


async def test_unknown_newer_version_refused(db: asyncpg.Connection) -> None:
    """A database holding a migration this version does not know raises MigrationError."""
    await db.execute(
        "INSERT INTO schema_migrations (version, name, checksum) VALUES (9999, 'future', 'x')"
    )
    with pytest.raises(MigrationError, match="9999"):
        await migrate(db)


async def test_refused_migrate_releases_lock(db: asyncpg.Connection) -> None:
    """A migrate that fails still releases its advisory lock."""
    edited = [dataclasses.replace(m, sql="SELECT 1") for m in shipped_migrations()]
    with pytest.raises(MigrationError):
        await migrate(db, edited)
    assert await held_advisory_locks(db) == 0


async def test_failing_migration_rolls_back(db: asyncpg.Connection) -> None:
    """A migration that fails part-way leaves neither its changes nor a record behind."""
    latest = shipped_migrations()[-1].version
    broken = Migration(latest + 1, "broken", "CREATE TABLE half_done (x int); SELECT 1 / 0;")
    with pytest.raises(asyncpg.DivisionByZeroError):
        await migrate(db, [*shipped_migrations(), broken])
    assert await db.fetchval("SELECT to_regclass('half_done')") is None
    assert await db.fetchval("SELECT max(version) FROM schema_migrations") == latest
    assert await held_advisory_locks(db) == 0


async def test_new_migration_applied_after_init(db: asyncpg.Connection) -> None:
    """A migration added after the applied ones is applied alone, in order."""
    version = shipped_migrations()[-1].version + 1
    added = Migration(version, "add_note", "ALTER TABLE users ADD COLUMN note text;")
    assert await migrate(db, [*shipped_migrations(), added]) == [f"{version:04d}_add_note"]


async def test_concurrent_migrations(empty_database_url: str) -> None:
    """Two replicas migrating an empty database at once both succeed; it is applied once."""
    first = await asyncpg.connect(empty_database_url)
    second = await asyncpg.connect(empty_database_url)
    try:
        results = await asyncio.gather(migrate(first), migrate(second))
        names = [f"{m.version:04d}_{m.name}" for m in shipped_migrations()]
        assert sorted(results) == [[], names]
        assert await first.fetchval("SELECT count(*) FROM schema_migrations") == len(names)
    finally:
        await first.close()
        await second.close()


# schema constraints

DIGEST = "decode(repeat('ab', 32), 'hex')"


@pytest.fixture
async def seeded(db: asyncpg.Connection) -> asyncpg.Connection:
    """The migrated database with a user, a web client and a grant between them."""
    await db.execute("INSERT INTO users (user_id, login) VALUES ('u1', 'user one')")
    await db.execute(
        """INSERT INTO clients (client_id, name, website, client_type, redirect_uris, owner_id)
           VALUES ('c1', 'App', 'https://app.example', 'web', '{https://app.example/cb}', 'u1')"""
    )
    await db.execute("INSERT INTO grants (user_id, client_id) VALUES ('u1', 'c1')")
    return db


def _client(client_id: str, client_type: str, redirect_uris: str) -> str:
    return f"""INSERT INTO clients (client_id, name, website, client_type, redirect_uris, owner_id)
               VALUES ('{client_id}', 'App', 'https://app.example', '{client_type}',
                       '{redirect_uris}', 'u1')"""


def _code(method: str) -> str:
    return f"""INSERT INTO authorization_codes
                   (digest, client_id, user_id, grant_id, code_challenge, code_challenge_method,
                    expires_at)
               VALUES ({DIGEST}, 'c1', 'u1', (SELECT grant_id FROM grants), 'challenge',
                       '{method}', now() + interval '1 minute')"""


def _token(developer: bool, expires: str) -> str:
    return f"""INSERT INTO tokens (digest, kind, client_id, user_id, grant_id, developer,
                                   expires_at)
               VALUES ({DIGEST}, 'access', 'c1', 'u1', (SELECT grant_id FROM grants),
                       {developer}, {expires})"""


@pytest.mark.parametrize(
    "sql",
    [
        pytest.param(_client("c2", "web", "{}"), id="web-client-without-redirect-uris"),
        pytest.param(_client("c2", "mobile", "{https://a.example/cb}"), id="unknown-client-type"),
        pytest.param(_client("c 2", "desktop", "{}"), id="client-id-with-space"),
        pytest.param(_token(False, "NULL"), id="non-developer-token-without-expiry"),
        pytest.param(_code("plain"), id="code-challenge-method-plain"),
    ],
)
async def test_schema_refuses(seeded: asyncpg.Connection, sql: str) -> None:
    """The schema itself refuses rows that break the service's rules."""
    with pytest.raises(asyncpg.CheckViolationError):
        await seeded.execute(sql)


@pytest.mark.parametrize(
    "sql",
    [
        pytest.param(_client("c2", "desktop", "{}"), id="desktop-client-without-redirect-uris"),
        pytest.param(_token(True, "NULL"), id="developer-token-without-expiry"),
        pytest.param(_token(False, "now() + interval '1 hour'"), id="token-with-expiry"),
        pytest.param(_code("S256"), id="code-challenge-method-s256"),
    ],
)
async def test_schema_accepts_counterparts(seeded: asyncpg.Connection, sql: str) -> None:
    """The valid counterparts of the refused rows are stored."""
    assert await seeded.execute(sql) == "INSERT 0 1"


# named queries


def test_every_named_query_loaded() -> None:
    """load_queries returns every query named in sql/queries, each with SQL."""
    named = set()
    for path in data_dir("sql").joinpath("queries").glob("*.sql"):
        named |= set(re.findall(r"^-- name: (\w+)", path.read_text(), flags=re.MULTILINE))
    queries = load_queries()
    assert set(queries) == named
    assert all(sql.strip() for sql in queries.values())


async def test_every_query_prepares(db: asyncpg.Connection) -> None:
    """Every named query is valid SQL against the migrated schema."""
    for name, sql in load_queries().items():
        try:
            await db.prepare(sql)
        except asyncpg.PostgresError as exc:  # pragma: no cover - only on failure
            pytest.fail(f"query {name} does not prepare: {exc}")


def test_parse_queries_splits_named_queries() -> None:
    """A file's text is split into its named queries, without comments or trailing ';'."""
    text = "-- header\n-- name: one\n-- First.\nSELECT 1;\n\n-- name: two\nSELECT 2\nFROM t;\n"
    assert parse_queries(text) == {"one": "SELECT 1", "two": "SELECT 2\nFROM t"}


def test_parse_queries_refuses_duplicate_names() -> None:
    """A name defined twice is an error."""
    with pytest.raises(ValueError, match="twice"):
        parse_queries("-- name: one\nSELECT 1;\n-- name: one\nSELECT 2;\n")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("-- name: one\n-- Only a comment.\n-- name: two\nSELECT 2;\n", id="comment"),
        pytest.param("-- name: one\nSELECT 1;\n-- name: two\n\n", id="blank-at-end"),
    ],
)
def test_parse_queries_refuses_empty_query(text: str) -> None:
    """A name followed by no SQL is an error."""
    with pytest.raises(ValueError, match="no SQL"):
        parse_queries(text)


async def test_schema_file_matches_migrations(cluster_url: str) -> None:
    """sql/schema.sql is what the migrations build (regenerate: authserver schema)."""
    assert await migrated_schema(cluster_url) == shipped_schema()


def test_schema_normalising_drops_only_noise() -> None:
    """Normalising drops pg_dump's version lines and session settings, never a definition, so a
    changed column still shows as a difference."""
    dump = "-- Dumped from database version 16.2\nSET lock_timeout = 0;\nCREATE TABLE t (a int);\n"
    assert "Dumped" not in normalize(dump)
    assert "SET " not in normalize(dump)
    assert "CREATE TABLE t (a int);" in normalize(dump)
    assert normalize(dump) != normalize(dump.replace("a int", "a bigint"))
    assert "CREATE TABLE public.tokens" in shipped_schema()


@pytest.mark.parametrize(
    ("query", "row_type", "alias"),
    [
        ("issue_tokens", TokenInsert, "t"),
        ("issue_tokens", AuditInsert, "a"),
        ("issue_client_tokens", ClientTokenInsert, "c"),
        ("issue_client_tokens", ClientAuditInsert, "e"),
    ],
    ids=["tokens", "audit", "client tokens", "client audit"],
)
def test_multi_row_insert_columns_follow_the_row_type(
    query: str, row_type: type, alias: str
) -> None:
    """The issue statements unnest their arrays into the columns of the row types, in order."""
    sql = load_queries()[query]
    match = re.search(rf"\)\s+AS {alias}\(([^)]*)\)", sql)
    assert match is not None
    columns = [name.strip() for name in match.group(1).split(",")]
    assert columns == list(row_type._fields)  # type: ignore[attr-defined]
