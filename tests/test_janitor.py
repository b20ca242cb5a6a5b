"""The janitor: what each purge deletes and keeps, the advisory lock, the CLI, and a purge of a
million expired tokens in bounded batches while introspection keeps answering.

The purges run against a real database through ``open_services`` (the pool the server uses);
rows are planted with SQL so their timestamps can lie in the past.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest

from authserver import janitor
from authserver.config import Settings
from authserver.security.tokens import token_digest
from authserver.services import open_services
from tests.conftest import server_environ
from tests.live_server import live_server
from tests.token_support import web_auth

USER = "janitor-user"
CLIENT = "janitor-client"

MILLION = 1_000_000
BIG_BATCH = 20_000
STATEMENT_TIMEOUT_MS = 2_000  # no janitor statement may run longer (PostgreSQL enforces it)
INTROSPECTION_BOUND = 1.0  # seconds any one introspection may take during the purge
CLI_TIMEOUT = 60.0


@pytest.fixture
async def grant_id(db: asyncpg.Connection) -> int:
    """A user, a web client and the user's grant to it: what tokens and codes hang from."""
    await db.execute("INSERT INTO users (user_id, login) VALUES ($1, $1)", USER)
    await db.execute(
        """INSERT INTO clients (client_id, name, website, client_type, redirect_uris, owner_id)
           VALUES ($1, 'Janitor', 'https://janitor.example', 'web',
                   '{https://janitor.example/cb}', $2)""",
        CLIENT,
        USER,
    )
    granted: int = await db.fetchval(
        "INSERT INTO grants (user_id, client_id) VALUES ($1, $2) RETURNING grant_id", USER, CLIENT
    )
    return granted


async def run_janitor(
    database_url: str,
    on_batch: Callable[[str, int], None] | None = None,
    **overrides: str,
) -> janitor.Report:
    """One janitor pass with the server's settings (plus ``overrides``) and its pool."""
    settings = Settings.from_env(server_environ(database_url, **overrides))
    async with open_services(settings) as services:
        return await janitor.run_once(services.store, settings, on_batch)


async def add_token(
    db: asyncpg.Connection,
    grant: int,
    expires: str,
    *,
    kind: str = "access",
    family: UUID | None = None,
    consumed: bool = False,
) -> bytes:
    """A token row of the grant expiring at ``now() + expires`` (an interval); its digest."""
    digest = secrets.token_bytes(32)
    await db.execute(
        """INSERT INTO tokens (digest, kind, client_id, user_id, grant_id, family_id,
                               expires_at, consumed_at)
           VALUES ($1, $2, $3, $4, $5, $6, now() + $7::text::interval,
                   CASE WHEN $8 THEN now() - interval '1 minute' END)""",
        digest,
        kind,
        CLIENT,
        USER,
        grant,
        family,
        expires,
        consumed,
    )
    return digest


async def token_digests(db: asyncpg.Connection) -> set[bytes]:
    return {row["digest"] for row in await db.fetch("SELECT digest FROM tokens")}


async def add_code(db: asyncpg.Connection, grant: int, expires: str) -> bytes:
    """An authorization code row expiring at ``now() + expires``; its digest."""
    digest = secrets.token_bytes(32)
    await db.execute(
        """INSERT INTO authorization_codes (digest, client_id, user_id, grant_id, expires_at)
           VALUES ($1, $2, $3, $4, now() + $5::text::interval)""",
        digest,
        CLIENT,
        USER,
        grant,
        expires,
    )
    return digest


# what each purge deletes and keeps


async def test_expired_tokens_are_deleted(
    database_url: str, db: asyncpg.Connection, grant_id: int
) -> None:
    """Expired access and refresh tokens without a family go; unexpired and developer stay."""
    expired_access = await add_token(db, grant_id, "-1 second")
    expired_refresh = await add_token(db, grant_id, "-1 day", kind="refresh")
    live = await add_token(db, grant_id, "1 hour")
    developer = secrets.token_bytes(32)
    await db.execute(
        """INSERT INTO tokens (digest, kind, client_id, user_id, grant_id, developer)
           VALUES ($1, 'access', $2, $3, $4, true)""",
        developer,
        CLIENT,
        USER,
        grant_id,
    )
    report = await run_janitor(database_url)
    assert report.ran
    assert report.deleted["tokens"] == 2
    remaining = await token_digests(db)
    assert remaining == {live, developer}
    assert expired_access not in remaining
    assert expired_refresh not in remaining


async def test_rotated_refresh_token_kept_while_family_lives(
    database_url: str, db: asyncpg.Connection, grant_id: int
) -> None:
    """An expired, rotated-out family member stays while a sibling is live, for reuse checks."""
    family = uuid4()
    rotated = await add_token(
        db, grant_id, "-1 minute", kind="refresh", family=family, consumed=True
    )
    old_access = await add_token(db, grant_id, "-2 hours", family=family)
    current = await add_token(db, grant_id, "30 days", kind="refresh", family=family)
    report = await run_janitor(database_url)
    assert report.deleted["tokens"] == 0
    assert await token_digests(db) == {rotated, old_access, current}


async def test_family_deleted_once_all_of_it_expired(
    database_url: str, db: asyncpg.Connection, grant_id: int
) -> None:
    """When the last member of a refresh-token family expires, the whole family goes."""
    family = uuid4()
    await add_token(db, grant_id, "-1 minute", kind="refresh", family=family, consumed=True)
    await add_token(db, grant_id, "-2 hours", family=family)
    await add_token(db, grant_id, "-1 second", kind="refresh", family=family)
    report = await run_janitor(database_url)
    assert report.deleted["tokens"] == 3
    assert await token_digests(db) == set()


async def test_codes_kept_an_hour_after_expiry(
    database_url: str, db: asyncpg.Connection, grant_id: int
) -> None:
    """Codes expired within the last hour stay (replays are still recognised); older ones go."""
    await add_code(db, grant_id, "-61 minutes")
    recent = await add_code(db, grant_id, "-59 minutes")
    live = await add_code(db, grant_id, "1 minute")
    report = await run_janitor(database_url)
    assert report.deleted["authorization_codes"] == 1
    left = {row["digest"] for row in await db.fetch("SELECT digest FROM authorization_codes")}
    assert left == {recent, live}


@dataclass(frozen=True)
class Expiring:
    """A table the janitor purges on ``expires_at`` alone, and how to plant one row in it."""

    table: str
    key: str
    insert: str  # $1: the row's key, $2: the interval from now to its expiry

    def fresh_key(self) -> object:
        if self.key == "nonce":
            return secrets.token_urlsafe(16)
        if self.key == "throttle_key":
            return f"account:{secrets.token_hex(4)}"
        if self.key == "address":
            return f"address-{secrets.token_hex(8)}"
        return secrets.token_bytes(32)


EXPIRING = [
    Expiring(
        "browser_sessions",
        "sid_digest",
        f"""INSERT INTO browser_sessions (sid_digest, user_id, expires_at)
            VALUES ($1, '{USER}', now() + $2::text::interval)""",
    ),
    Expiring(
        "login_failures",
        "throttle_key",
        """INSERT INTO login_failures (throttle_key, failures, expires_at)
           VALUES ($1, 3, now() + $2::text::interval)""",
    ),
    Expiring(
        "consent_nonces",
        "nonce",
        "INSERT INTO consent_nonces (nonce, expires_at) VALUES ($1, now() + $2::text::interval)",
    ),
    Expiring(
        "client_failures",
        "address",
        f"""INSERT INTO client_failures (client_id, kind, address, failures, max_failures,
                                         expires_at)
            VALUES ('{CLIENT}', 'secret', $1, 3, 20, now() + $2::text::interval)""",
    ),
]


@pytest.mark.parametrize("kind", EXPIRING, ids=[kind.table for kind in EXPIRING])
async def test_expired_rows_are_deleted(
    database_url: str, db: asyncpg.Connection, grant_id: int, kind: Expiring
) -> None:
    """Expired sessions, sign-in and client throttles and consent nonces go; the rest stays."""
    expired, live = kind.fresh_key(), kind.fresh_key()
    await db.execute(kind.insert, expired, "-1 second")
    await db.execute(kind.insert, live, "10 minutes")
    report = await run_janitor(database_url)
    assert report.deleted[kind.table] == 1
    left = [row[kind.key] for row in await db.fetch(f"SELECT {kind.key} FROM {kind.table}")]
    assert left == [live]


async def test_expired_client_secrets_are_deleted(
    database_url: str, db: asyncpg.Connection, grant_id: int
) -> None:
    """Secrets past their rotation overlap go; the current one and one still overlapping stay."""
    insert = """INSERT INTO client_secrets (client_id, key_id, digest, expires_at)
                VALUES ($1, 'k1', $2, now() + $3::text::interval) RETURNING secret_id"""
    await db.fetchval(insert, CLIENT, secrets.token_bytes(32), "-1 second")
    overlapping = await db.fetchval(insert, CLIENT, secrets.token_bytes(32), "1 hour")
    current = await db.fetchval(insert, CLIENT, secrets.token_bytes(32), None)
    report = await run_janitor(database_url)
    assert report.deleted["client_secrets"] == 1
    left = {row["secret_id"] for row in await db.fetch("SELECT secret_id FROM client_secrets")}
    assert left == {overlapping, current}


async def test_audit_events_older_than_retention_are_deleted(
    database_url: str, db: asyncpg.Connection
) -> None:
    """Audit events older than AUTHSERVER_AUDIT_RETENTION go; newer ones stay."""
    insert = """INSERT INTO audit_events (occurred_at, kind)
                VALUES (now() - $1::text::interval, 'test.event') RETURNING event_id"""
    await db.fetchval(insert, "2 hours")
    await db.fetchval(insert, "61 minutes")
    recent = await db.fetchval(insert, "59 minutes")
    report = await run_janitor(database_url, audit_retention="1h")
    assert report.deleted["audit_events"] == 2
    assert [row["event_id"] for row in await db.fetch("SELECT event_id FROM audit_events")] == [
        recent
    ]


async def test_default_retention_keeps_recent_audit_events(
    database_url: str, db: asyncpg.Connection
) -> None:
    """With the default 90-day retention, a month-old audit event stays."""
    await db.execute(
        "INSERT INTO audit_events (occurred_at, kind) VALUES (now() - interval '30 days', 'x.y')"
    )
    report = await run_janitor(database_url)
    assert report.deleted["audit_events"] == 0
    assert await db.fetchval("SELECT count(*) FROM audit_events") == 1


async def test_grants_revoked_before_retention_are_deleted(
    database_url: str, db: asyncpg.Connection, grant_id: int
) -> None:
    """Grants revoked longer ago than the retention go; recently revoked and active ones stay."""
    for user_id in ("old-revoked", "new-revoked"):
        await db.execute("INSERT INTO users (user_id, login) VALUES ($1, $1)", user_id)
    insert = """INSERT INTO grants (user_id, client_id, created_at, revoked_at)
                VALUES ($1, $2, now() - interval '1 day', now() - $3::text::interval)
                RETURNING grant_id"""
    await db.fetchval(insert, "old-revoked", CLIENT, "2 hours")
    recent = await db.fetchval(insert, "new-revoked", CLIENT, "30 minutes")
    await db.execute(
        "UPDATE grants SET created_at = now() - interval '1 year' WHERE grant_id = $1", grant_id
    )
    report = await run_janitor(database_url, audit_retention="1h")
    assert report.deleted["grants"] == 1
    left = {row["grant_id"] for row in await db.fetch("SELECT grant_id FROM grants")}
    assert left == {grant_id, recent}


async def test_small_batches_delete_everything(
    database_url: str, db: asyncpg.Connection, grant_id: int
) -> None:
    """A backlog larger than the batch is deleted in several bounded batches in one pass."""
    await db.execute(
        """INSERT INTO tokens (digest, kind, client_id, expires_at)
           SELECT decode(md5(i::text) || md5((i + 1)::text), 'hex'), 'access', $1,
                  now() - interval '1 day'
           FROM generate_series(1, 450) AS i""",
        CLIENT,
    )
    batches: list[int] = []
    report = await run_janitor(
        database_url, lambda what, rows: batches.append(rows), janitor_batch="100"
    )
    assert report.deleted["tokens"] == 450
    assert batches == [100, 100, 100, 100, 50]
    assert await db.fetchval("SELECT count(*) FROM tokens") == 0


# one replica at a time


async def test_second_run_skips_while_lock_held(
    database_url: str, db: asyncpg.Connection, grant_id: int
) -> None:
    """While another session holds the janitor's advisory lock, a run does nothing."""
    expired = await add_token(db, grant_id, "-1 second")
    assert await db.fetchval("SELECT pg_try_advisory_lock($1)", janitor.LOCK_KEY)
    try:
        report = await run_janitor(database_url)
    finally:
        await db.fetchval("SELECT pg_advisory_unlock($1)", janitor.LOCK_KEY)
    assert report.ran is False
    assert report.total == 0
    assert await token_digests(db) == {expired}


async def test_run_skips_while_another_pass_works(
    database_url: str, db: asyncpg.Connection, grant_id: int
) -> None:
    """A pass started while another replica's pass is deleting skips; the first finishes all."""
    await db.execute(
        """INSERT INTO tokens (digest, kind, client_id, expires_at)
           SELECT decode(md5(i::text) || md5((i + 1)::text), 'hex'), 'access', $1,
                  now() - interval '1 day'
           FROM generate_series(1, 20000) AS i""",
        CLIENT,
    )
    settings = Settings.from_env(server_environ(database_url, janitor_batch="100"))
    working = asyncio.Event()
    async with open_services(settings) as first, open_services(settings) as second:
        busy = asyncio.create_task(
            janitor.run_once(first.store, settings, lambda what, rows: working.set())
        )
        try:
            await asyncio.wait_for(working.wait(), 10.0)  # the first pass holds the lock
            skipped = await janitor.run_once(second.store, settings)
        finally:
            done = await asyncio.wait_for(busy, 30.0)
    assert skipped.ran is False
    assert done.ran is True
    assert done.deleted["tokens"] == 20000


async def test_lock_released_after_run(
    database_url: str, db: asyncpg.Connection, grant_id: int
) -> None:
    """After a pass, the advisory lock is free for the next replica."""
    await add_token(db, grant_id, "-1 second")
    assert (await run_janitor(database_url)).ran
    assert await db.fetchval("SELECT pg_try_advisory_lock($1)", janitor.LOCK_KEY)
    await db.fetchval("SELECT pg_advisory_unlock($1)", janitor.LOCK_KEY)


# the command a CronJob runs


async def run_cli(database_url: str) -> tuple[int, str, str]:
    """``python -m authserver janitor`` against the database: (status, stdout, stderr)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AUTHSERVER_")}
    env.update(server_environ(database_url))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "authserver",
        "janitor",
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), CLI_TIMEOUT)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def report_line(stdout: str) -> dict[str, Any]:
    """The JSON report among the command's stdout lines (its JSON log lines are the others)."""
    reports = [
        parsed
        for parsed in (json.loads(line) for line in stdout.splitlines() if line.strip())
        if "deleted" in parsed
    ]
    assert len(reports) == 1, stdout
    report: dict[str, Any] = reports[0]
    return report


async def test_cli_prints_json_report(
    database_url: str, db: asyncpg.Connection, grant_id: int
) -> None:
    """`authserver janitor` exits 0 and prints what it deleted per table as JSON."""
    for _ in range(3):
        await add_token(db, grant_id, "-1 second")
    await add_code(db, grant_id, "-2 hours")
    status, out, err = await run_cli(database_url)
    assert status == 0, err
    report = report_line(out)
    assert report["deleted"]["tokens"] == 3
    assert report["deleted"]["authorization_codes"] == 1
    assert set(report["deleted"]) == {
        "tokens",
        "authorization_codes",
        "device_codes",
        "client_secrets",
        "browser_sessions",
        "login_failures",
        "client_failures",
        "consent_nonces",
        "grants",
        "audit_events",
        "signing_keys",
    }
    assert isinstance(report["seconds"], float | int)
    assert await db.fetchval("SELECT count(*) FROM tokens") == 0


async def test_cli_skips_while_another_janitor_runs(
    database_url: str, db: asyncpg.Connection, grant_id: int
) -> None:
    """`authserver janitor` exits 0 without deleting anything while the lock is held."""
    await add_token(db, grant_id, "-1 second")
    assert await db.fetchval("SELECT pg_try_advisory_lock($1)", janitor.LOCK_KEY)
    try:
        status, out, err = await run_cli(database_url)
    finally:
        await db.fetchval("SELECT pg_advisory_unlock($1)", janitor.LOCK_KEY)
    assert status == 0, err
    assert "another janitor is running" in out
    assert await db.fetchval("SELECT count(*) FROM tokens") == 1


# a million expired tokens


def with_statement_timeout(url: str, milliseconds: int) -> str:
    """``url`` with a PostgreSQL ``statement_timeout`` for every connection made from it."""
    parts = urlsplit(url)
    setting = f"statement_timeout={milliseconds}"
    return urlunsplit(parts._replace(query=f"{parts.query}&{setting}" if parts.query else setting))


async def fill_expired_tokens(db: asyncpg.Connection, client_id: str, count: int) -> None:
    """``count`` expired client-credentials tokens, inserted in one statement."""
    async with db.transaction():
        if await db.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"):
            # Skips the per-row foreign-key trigger (the client exists): halves the fill time.
            await db.execute("SET LOCAL session_replication_role = replica")
        await db.execute(
            """INSERT INTO tokens (digest, kind, client_id, expires_at, created_at)
               SELECT decode(md5(i::text) || md5((i + 1)::text), 'hex'), 'access', $1,
                      now() - interval '1 hour' - i * interval '1 millisecond',
                      now() - interval '2 hours'
               FROM generate_series(1, $2::int) AS i
               ORDER BY 1""",
            client_id,
            count,
        )
    await db.execute("ANALYZE tokens")  # what autovacuum would do after a bulk load


@dataclass
class Introspections:
    """What a resource server saw while asking about one valid token over and over."""

    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    async def keep_asking(
        self, base_url: str, client: dict[str, Any], token: str, stop: asyncio.Event
    ) -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=10.0) as http:
            while not stop.is_set():
                started = time.perf_counter()
                try:
                    response = await http.post(
                        "/oauth2/introspect", data={"token": token}, headers=web_auth(client)
                    )
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                    continue
                self.latencies.append(time.perf_counter() - started)
                if response.status_code != 200 or response.json().get("active") is not True:
                    self.failures.append(f"{response.status_code} {response.text[:200]}")


@pytest.mark.slow
async def test_million_expired_tokens_purged_while_introspection_answers(
    database_url: str, db: asyncpg.Connection, introspector: dict[str, Any], tmp_path: Path
) -> None:
    """A million expired tokens go in bounded batches; introspection answers quickly throughout."""
    fill_started = time.monotonic()
    await fill_expired_tokens(db, introspector["client_id"], MILLION)
    fill_seconds = time.monotonic() - fill_started
    assert await db.fetchval("SELECT count(*) FROM tokens WHERE expires_at < now()") == MILLION

    async with live_server(database_url, tmp_path / "server.log", janitor_interval="0") as server:
        async with httpx.AsyncClient(base_url=server.public_url, timeout=10.0) as http:
            issued = await http.post(
                "/oauth2/token",
                data={"grant_type": "client_credentials"},
                headers=web_auth(introspector),
            )
        assert issued.status_code == 200, issued.text
        token = issued.json()["access_token"]

        batch_ends: list[tuple[float, str, int]] = []
        stop = asyncio.Event()
        seen = Introspections()
        asker = asyncio.create_task(seen.keep_asking(server.public_url, introspector, token, stop))
        try:
            await asyncio.sleep(0.2)  # the asker is running before the first DELETE
            started = time.monotonic()
            report = await run_janitor(
                with_statement_timeout(database_url, STATEMENT_TIMEOUT_MS),
                lambda what, rows: batch_ends.append((time.monotonic(), what, rows)),
                janitor_batch=str(BIG_BATCH),
            )
        finally:
            stop.set()
            await asyncio.wait_for(asker, 15.0)

    assert report.ran
    assert report.deleted["tokens"] == MILLION
    token_batches = [(at, rows) for at, what, rows in batch_ends if what == "tokens"]
    assert len(token_batches) == MILLION // BIG_BATCH
    assert all(rows == BIG_BATCH for _, rows in token_batches)
    ends = [started] + [at for at, _ in token_batches]
    durations = [later - earlier for earlier, later in itertools.pairwise(ends)]
    assert max(durations) < STATEMENT_TIMEOUT_MS / 1000

    assert seen.failures == []
    assert len(seen.latencies) >= 20
    assert max(seen.latencies) < INTROSPECTION_BOUND

    assert await db.fetchval("SELECT count(*) FROM tokens WHERE expires_at < now()") == 0
    assert (
        await db.fetchval("SELECT count(*) FROM tokens WHERE digest = $1", token_digest(token)) == 1
    )
    print(  # the figures, for -s runs and the report
        f"\nfill {fill_seconds:.1f} s; purge {report.seconds:.1f} s in {len(token_batches)} "
        f"batches of {BIG_BATCH} (mean {sum(durations) / len(durations):.3f} s, "
        f"max {max(durations):.3f} s); {len(seen.latencies)} introspections "
        f"(median {sorted(seen.latencies)[len(seen.latencies) // 2] * 1000:.1f} ms, "
        f"max {max(seen.latencies) * 1000:.1f} ms)"
    )
