"""The ``authserver`` command: serve, migrate, and manage users and applications.

Every command works against ``AUTHSERVER_DATABASE_URL`` or, when it is unset, the embedded
development database in ``AUTHSERVER_DATA_DIR``. Errors are one line on stderr and a non-zero
exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg

from authserver import janitor, manage
from authserver.config import Settings, parse_duration
from authserver.db.migrate import migrate
from authserver.db.pool import create_pool
from authserver.db.store import Store
from authserver.errors import AdminError, AuthServerError, ConfigError, ImportFailed, Malformed
from authserver.logs import configure_logging
from authserver.services import open_services

if TYPE_CHECKING:
    from authserver.phraseanet.report import Report


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = _parser().parse_args(argv)
    environ = os.environ if environ is None else environ
    try:
        with _settings(environ, announce=args.command == "serve") as settings:
            # A command's stdout is its JSON answer (for jq and scripts); its logs go beside it.
            configure_logging(settings.log_level, None if args.command == "serve" else sys.stderr)
            result: int = args.run(settings, args)
            return result
    except ConfigError as exc:
        print(f"authserver: configuration error: {exc.description}", file=sys.stderr)
        return 2
    except AdminError as exc:
        print(f"authserver: {exc.error}: {exc.description}", file=sys.stderr)
        return 1
    except AuthServerError as exc:  # migrations out of step, the database unreachable
        print(f"authserver: {_KINDS.get(type(exc).__name__, '')}{exc.description}", file=sys.stderr)
        return 1
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        print(f"authserver: cannot use the database: {type(exc).__name__}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


_KINDS = {"MigrationError": "migration error: ", "ImportFailed": "import failed: "}


@contextmanager
def _settings(environ: Mapping[str, str], announce: bool) -> Iterator[Settings]:
    if environ.get("AUTHSERVER_DATABASE_URL", "").strip():
        yield Settings.from_env(environ)
        return
    from authserver.embedded import embedded_settings

    with embedded_settings(environ, announce=announce) as settings:
        yield settings


# commands


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from authserver.serve import run_served, serve

    if args.workers is not None:
        settings = dataclasses.replace(settings, workers=args.workers).checked()
    settings = settings.per_worker()
    if settings.workers == 1:
        return 0 if run_served(serve(settings)) else 1
    from authserver.workers import supervise

    return supervise(settings)


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    async def run() -> list[str]:
        pool = await create_pool(settings)
        try:
            async with pool.acquire() as conn:
                return await migrate(conn)
        finally:
            await pool.close()

    applied = asyncio.run(run())
    print("applied: " + ", ".join(applied) if applied else "the schema is up to date")
    return 0


def _schema(settings: Settings, args: argparse.Namespace) -> int:
    from authserver.db.schema import migrated_schema

    assert settings.database_url is not None  # given, or the embedded database's
    sys.stdout.write(asyncio.run(migrated_schema(settings.database_url)))
    return 0


def _janitor(settings: Settings, args: argparse.Namespace) -> int:
    async def run() -> janitor.Report:
        async with open_services(settings) as services:
            return await janitor.run_once(services.store, settings)

    report = asyncio.run(run())
    if not report.ran:
        print("another janitor is running; nothing done")
    else:
        print(json.dumps({"deleted": report.deleted, "seconds": round(report.seconds, 2)}))
    return 0


def _import_phraseanet(settings: Settings, args: argparse.Namespace) -> int:
    from authserver.phraseanet.importer import ImportOptions, import_appbox
    from authserver.phraseanet.progress import Progress
    from authserver.phraseanet.source import AppboxUrl

    url = AppboxUrl.parse(args.appbox_url)

    # Batches of thousands of rows are no requests: the per-request bounds do not apply.
    bulk = dataclasses.replace(settings, db_statement_timeout=600, db_lock_timeout=60)

    async def run() -> Report:
        pool = await create_pool(bulk)
        try:
            async with pool.acquire() as conn:
                if args.dry_run:
                    if await conn.fetchval("SELECT to_regclass('phraseanet_import')") is None:
                        raise ImportFailed("the database is not migrated: run authserver migrate")
                else:
                    await migrate(conn)
            options = ImportOptions(dry_run=args.dry_run, legacy_token_ttl=args.legacy_token_ttl)
            return await import_appbox(Store(pool), url, settings, options, Progress(sys.stderr))
        finally:
            await pool.close()

    report = asyncio.run(run())
    if args.report is not None:
        report.write(args.report)
    print("\n".join(report.summary()))
    return 0


def _ttl(raw: str) -> int:
    try:
        seconds = parse_duration(raw)
    except Malformed as exc:
        raise argparse.ArgumentTypeError(exc.description) from None
    if not 3600 <= seconds <= 3650 * 86400:
        raise argparse.ArgumentTypeError("must be between 1h and 3650d")
    return seconds


def _workers(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= 1024:
        raise argparse.ArgumentTypeError("expected a whole number between 1 and 1024")
    return int(raw)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="authserver",
        description="OAuth 2.0 authorization server for Phraseanet. Configured by AUTHSERVER_* "
        "environment variables; without AUTHSERVER_DATABASE_URL an embedded development "
        "database in AUTHSERVER_DATA_DIR (default ./.authserver) is used.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve the public and admin listeners")
    serve.add_argument(
        "--workers",
        type=_workers,
        help="server processes sharing the listeners (default: AUTHSERVER_WORKERS, or the "
        "number of CPUs this process may use)",
    )
    serve.set_defaults(run=_serve)
    migrate_cmd = commands.add_parser("migrate", help="apply pending schema migrations")
    migrate_cmd.set_defaults(run=_migrate)
    schema_cmd = commands.add_parser(
        "schema",
        help="print the schema the migrations build (sql/schema.sql), from a throwaway database",
    )
    schema_cmd.set_defaults(run=_schema)
    janitor_cmd = commands.add_parser(
        "janitor", help="delete expired codes, tokens, sessions and old audit events, once"
    )
    janitor_cmd.set_defaults(run=_janitor)

    import_cmd = commands.add_parser("import", help="import from another server").add_subparsers(
        dest="source", required=True, metavar="SOURCE"
    )
    phraseanet = import_cmd.add_parser(
        "phraseanet",
        help="import a Phraseanet appbox: users, applications, grants, tokens (docs/phraseanet.md)",
    )
    phraseanet.add_argument(
        "appbox_url", metavar="APPBOX_URL", help="mysql://USER:PASSWORD@HOST:PORT/DATABASE"
    )
    phraseanet.add_argument(
        "--dry-run", action="store_true", help="read everything, write nothing, report"
    )
    phraseanet.add_argument(
        "--report", type=Path, metavar="FILE", help="write the JSON report to FILE"
    )
    phraseanet.add_argument(
        "--legacy-token-ttl",
        type=_ttl,
        default=90 * 86400,
        metavar="DURATION",
        help="how long imported flow tokens stay valid (default 90d; developer tokens never "
        "expire)",
    )
    phraseanet.set_defaults(run=_import_phraseanet)

    manage.add_commands(commands)
    return parser
