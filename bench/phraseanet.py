"""The Phraseanet import at scale: ``python -m bench.phraseanet`` (bench/README.md).

Generates an appbox of 100,000 users and 1,000,000 tokens in a throwaway MariaDB, imports it into
a throwaway PostgreSQL with ``authserver.phraseanet``, and reports rows per second for each
stage and the total time. argon2 wrapping dominates, so it runs with cheaper parameters than the
server's defaults (``ARGON2``, recorded with the figures): the defaults cost about 0.12 s a hash
here, two hours for 100,000 users on two cores.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import string
import sys
import time
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from authserver.config import Settings
from authserver.db.migrate import migrate
from authserver.db.pool import create_pool
from authserver.db.store import Store
from authserver.phraseanet.importer import ImportOptions, import_appbox
from authserver.phraseanet.progress import Progress
from authserver.phraseanet.source import AppboxUrl
from authserver.security.legacy import HMAC_SHA512, legacy_hex
from bench.postgres import throwaway_database
from tests.mariadb_server import MariaDB, mariadb_server

SITE_KEY = "bench-site-key-0123"
# Cheaper than the defaults (t=3, 64 MiB, p=4): about 2.3 ms a hash on this machine.
ARGON2 = {"time_cost": "1", "memory_cost": "4096", "parallelism": "1"}
CREATED = datetime(2020, 1, 1)
ALNUM = string.ascii_letters + string.digits
CHUNK = 5000  # rows per INSERT while generating


@dataclass(frozen=True)
class Shape:
    users: int = 100_000
    apps: int = 1_000
    tokens: int = 1_000_000
    tokens_per_account: int = 5


_RANDOM = random.Random(20240601)  # noqa: S311 -- test data, reproducible, not secrets


def _alnum(length: int) -> str:
    return "".join(_RANDOM.choices(ALNUM, k=length))


def generate(server: MariaDB, database: str, shape: Shape) -> None:
    """Fill the appbox: users with HMAC hashes (64-character nonces), one app per 100 users,
    accounts of users to apps, and their tokens (one developer token per app's creator)."""
    server.create_appbox(database)
    with server.connect(database) as conn, conn.cursor() as cursor:
        cursor.execute("SET unique_checks = 0, foreign_key_checks = 0")
        rows: list[tuple[Any, ...]] = []
        for user_id in range(1, shape.users + 1):
            nonce = _alnum(64)
            hashed = legacy_hex(HMAC_SHA512, f"password {user_id}", nonce, SITE_KEY)
            rows.append((user_id, f"user{user_id}", f"user{user_id}@example.com", hashed, nonce))
            if len(rows) == CHUNK or user_id == shape.users:
                cursor.executemany(
                    "INSERT INTO Users (id, login, email, password, nonce, salted_password,"
                    " created, updated) VALUES (%s, %s, %s, %s, %s, 1, '2020-01-01',"
                    " '2020-01-01')",
                    rows,
                )
                rows = []
        apps = [
            (app_id, app_id * (shape.users // shape.apps), _alnum(32), _alnum(32))
            for app_id in range(1, shape.apps + 1)
        ]
        cursor.executemany(
            "INSERT INTO ApiApplications (id, creator_id, type, name, description, website,"
            " client_id, client_secret, nonce, redirect_uri, activated, grant_password,"
            " webhook_active, created, updated) VALUES (%s, %s, 'web', 'App', '',"
            " 'https://app.example', %s, %s, '', 'https://app.example/cb', 1, 0, 0,"
            " '2020-01-01', '2020-01-01')",
            apps,
        )
        accounts = shape.tokens // shape.tokens_per_account
        per_chunk = CHUNK // shape.tokens_per_account
        for first in range(1, accounts + 1, per_chunk):
            ids = range(first, min(first + per_chunk, accounts + 1))
            cursor.executemany(
                "INSERT INTO ApiAccounts (id, user_id, application_id, revoked, api_version,"
                " created) VALUES (%s, %s, %s, 0, '2.0.0', '2020-01-01')",
                [(a, (a - 1) % shape.users + 1, _app_of(a, shape)) for a in ids],
            )
            # The first token of each account has Phraseanet 3.x's NULL expiry; on the app
            # creator's own account that makes it a developer token (D8).
            cursor.executemany(
                "INSERT INTO ApiOauthTokens (oauth_token, account_id, expires, last_used,"
                " created, updated) VALUES (%s, %s, %s, '2020-01-01', '2020-01-01',"
                " '2020-01-01')",
                [
                    (_alnum(32), a, None if n == 0 else 1_700_000_000)
                    for a in ids
                    for n in range(shape.tokens_per_account)
                ],
            )


def _app_of(account: int, shape: Shape) -> int:
    """Spread a user's accounts over different apps, so no (user, app) pair repeats."""
    return (account * 7 + (account - 1) // shape.users) % shape.apps + 1


class Stages(Progress):
    """Progress that also remembers when each stage started and how many rows it had."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.marks: list[tuple[str, int, float]] = []

    def stage(self, name: str, total: int) -> None:
        self.marks.append((name, total, time.perf_counter()))
        super().stage(name, total)

    def finish(self) -> None:
        self.marks.append(("end", 0, time.perf_counter()))
        super().finish()


async def run(shape: Shape) -> dict[str, Any]:
    with mariadb_server() as server:
        started = time.perf_counter()
        await asyncio.to_thread(generate, server, "appbox", shape)
        generated = time.perf_counter() - started
        print(f"generated the appbox in {generated:.0f} s", file=sys.stderr)
        async with throwaway_database() as database:
            env = {
                "AUTHSERVER_DATABASE_URL": database.url,
                "AUTHSERVER_ISSUER": "https://auth.example.test",
                "AUTHSERVER_SECRET_KEYS": "bench-secret-key-0123456789abcdefghijkl",
                "AUTHSERVER_ADMIN_TOKENS": "bench-admin-token-0123456789abcdefghijk",
                "AUTHSERVER_PHRASEANET_SITE_KEY": SITE_KEY,
                **{f"AUTHSERVER_ARGON2_{name.upper()}": value for name, value in ARGON2.items()},
            }
            settings = Settings.from_env(env)
            # As the CLI does: batches of thousands of rows are no requests.
            bulk = replace(settings, db_statement_timeout=600, db_lock_timeout=60)
            pool = await create_pool(bulk)
            try:
                async with pool.acquire() as conn:
                    await migrate(conn)
                progress = Stages()
                begun = time.perf_counter()
                url = AppboxUrl.parse(server.url("appbox"))
                report = await import_appbox(Store(pool), url, settings, ImportOptions(), progress)
                total = time.perf_counter() - begun
            finally:
                await pool.close()
    marks = progress.marks
    stages = {
        name: {
            "rows": rows,
            "seconds": round(end - start, 1),
            "rows_per_second": round(rows / (end - start)),
        }
        for (name, rows, start), (_, _, end) in itertools.pairwise(marks)
    }
    result = {
        "shape": shape.__dict__,
        "argon2": ARGON2,
        "cpus": os.cpu_count(),
        "generate_seconds": round(generated, 1),
        "read_and_plan_seconds": round(marks[0][2] - begun, 1),
        "stages": stages,
        "total_seconds": round(total, 1),
        "imported": dict(report.imported),
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.phraseanet", description=__doc__)
    parser.add_argument("--users", type=int, default=Shape.users)
    parser.add_argument("--tokens", type=int, default=Shape.tokens)
    parser.add_argument("--output", type=Path, default=Path("bench/phraseanet-results.json"))
    args = parser.parse_args()
    shape = Shape(users=args.users, tokens=args.tokens, apps=max(1, args.users // 100))
    result = asyncio.run(run(shape))
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'stage':<10} {'rows':>10} {'seconds':>8} {'rows/s':>9}")
    for name, figures in result["stages"].items():
        rate = figures["rows_per_second"]
        print(f"{name:<10} {figures['rows']:>10,} {figures['seconds']:>8} {rate:>9,}")
    print(f"read and plan {result['read_and_plan_seconds']} s; total {result['total_seconds']} s")


if __name__ == "__main__":
    main()
