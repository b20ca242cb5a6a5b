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
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg

from authserver import clients, janitor
from authserver.config import Settings, parse_duration
from authserver.db.migrate import migrate
from authserver.db.pool import create_pool
from authserver.db.store import Store
from authserver.errors import AdminError, AuthServerError, ConfigError, ImportFailed, Malformed
from authserver.logs import configure_logging
from authserver.oidc.keys import ALGORITHMS
from authserver.serialize import client_json, user_json
from authserver.services import Services, open_services

if TYPE_CHECKING:
    from authserver.phraseanet.report import Report

Command = Callable[[Services, argparse.Namespace], Awaitable[Any]]


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

    return 0 if run_served(serve(settings)) else 1


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


def _with_resources(command: Command) -> Callable[[Settings, argparse.Namespace], int]:
    def run(settings: Settings, args: argparse.Namespace) -> int:
        async def go() -> Any:
            async with open_services(settings) as services:
                return await command(services, args)

        result = asyncio.run(go())
        if result is not None:
            print(json.dumps(result, indent=2))
        return 0

    return run


async def _users_create(services: Services, args: argparse.Namespace) -> Any:
    payload: dict[str, Any] = {"login": args.login, "display_name": args.display_name}
    if args.email is not None:
        payload["email"] = args.email
    if args.email_verified:
        payload["email_verified"] = True
    if args.password_stdin:
        payload["password"] = sys.stdin.readline().rstrip("\r\n")
    user, _ = await services.users.upsert(args.user_id, payload)
    return user_json(user)


async def _users_delete(services: Services, args: argparse.Namespace) -> Any:
    await services.users.delete(args.user_id)
    return None


async def _clients_create(services: Services, args: argparse.Namespace) -> Any:
    payload: dict[str, Any] = {
        "name": args.name,
        "description": args.description,
        "website": args.website,
        "type": args.type,
        "owner_id": args.owner,
        "password_grant": args.password_grant,
        "introspection": args.introspection,
        "device_grant": args.device_grant,
    }
    if args.redirect_uri:
        payload["redirect_uris"] = args.redirect_uri
    if args.no_require_pkce:
        payload["require_pkce"] = False
    if args.id_token_alg is not None:
        payload["id_token_signed_response_alg"] = args.id_token_alg
    if args.post_logout_redirect_uri:
        payload["post_logout_redirect_uris"] = args.post_logout_redirect_uri
    registered = await services.clients.create(payload)
    return {**client_json(registered.client), "client_secret": registered.client_secret}


async def _clients_list(services: Services, args: argparse.Namespace) -> Any:
    found: list[dict[str, Any]] = []
    after = ""
    while True:  # every page: an operator listing wants them all
        page = await services.clients.page(args.owner, after, clients.MAX_PAGE)
        found.extend(client_json(client) for client in page)
        if len(page) < clients.MAX_PAGE:
            return found
        after = page[-1].client_id


async def _clients_show(services: Services, args: argparse.Namespace) -> Any:
    return client_json(await services.clients.get(args.client_id))


async def _clients_rotate(services: Services, args: argparse.Namespace) -> Any:
    rotated = await services.clients.rotate_secret(args.client_id)
    return {
        "client_id": rotated.client_id,
        "client_secret": rotated.client_secret,
        "previous_secret_valid_for": rotated.previous_valid_for,
    }


async def _clients_delete(services: Services, args: argparse.Namespace) -> Any:
    await services.clients.delete(args.client_id)
    return None


async def _keys_list(services: Services, args: argparse.Namespace) -> Any:
    await services.signing_keys.load()
    return list(services.signing_keys.keys.describe())


async def _keys_rotate(services: Services, args: argparse.Namespace) -> Any:
    made = await services.signing_keys.rotate()
    return {"rotated": made, "keys": list(services.signing_keys.keys.describe())}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="authserver",
        description="OAuth 2.0 authorization server for Phraseanet. Configured by AUTHSERVER_* "
        "environment variables; without AUTHSERVER_DATABASE_URL an embedded development "
        "database in AUTHSERVER_DATA_DIR (default ./.authserver) is used.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve the public and admin listeners")
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

    users_cmd = commands.add_parser("users", help="provision users").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    create = users_cmd.add_parser("create", help="create or replace a user")
    create.add_argument("user_id", help="the platform's id for the user")
    create.add_argument("--login", required=True)
    create.add_argument("--email")
    create.add_argument("--display-name", default="")
    create.add_argument(
        "--email-verified",
        action="store_true",
        help="the platform checked that the user owns the e-mail address (OpenID's "
        "email_verified claim)",
    )
    create.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input",
    )
    create.set_defaults(run=_with_resources(_users_create))
    delete = users_cmd.add_parser("delete", help="delete a user and all that is theirs")
    delete.add_argument("user_id")
    delete.set_defaults(run=_with_resources(_users_delete))

    clients_cmd = commands.add_parser("clients", help="manage applications").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    create = clients_cmd.add_parser("create", help="register an application")
    create.add_argument("--owner", required=True, help="user id of the developer")
    create.add_argument("--name", required=True)
    create.add_argument("--website", required=True)
    create.add_argument("--description", default="")
    create.add_argument("--type", choices=("web", "desktop"), default="web")
    create.add_argument(
        "--redirect-uri", action="append", default=[], help="repeat for several callbacks"
    )
    create.add_argument("--password-grant", action="store_true")
    create.add_argument("--introspection", action="store_true")
    create.add_argument(
        "--device-grant",
        action="store_true",
        help="let this application use the device authorization grant (RFC 8628)",
    )
    create.add_argument(
        "--no-require-pkce",
        action="store_true",
        help="let this web application redeem codes without PKCE (legacy SDKs; desktop "
        "applications always need it); the default follows AUTHSERVER_PKCE_REQUIRED_FOR_ALL",
    )
    create.add_argument(
        "--id-token-alg",
        choices=ALGORITHMS,
        help="how this application's ID tokens are signed (default RS256)",
    )
    create.add_argument(
        "--post-logout-redirect-uri",
        action="append",
        default=[],
        help="where the application may send the user after signing out; repeat for several",
    )
    create.set_defaults(run=_with_resources(_clients_create))
    listing = clients_cmd.add_parser("list", help="list applications")
    listing.add_argument("--owner", help="only this user's applications")
    listing.set_defaults(run=_with_resources(_clients_list))
    for name, command, text in (
        ("show", _clients_show, "show an application"),
        ("rotate-secret", _clients_rotate, "issue a new secret (the old one overlaps a while)"),
        ("delete", _clients_delete, "delete an application and all issued under it"),
    ):
        sub = clients_cmd.add_parser(name, help=text)
        sub.add_argument("client_id")
        sub.set_defaults(run=_with_resources(command))

    keys_cmd = commands.add_parser("keys", help="ID token signing keys").add_subparsers(
        dest="action", required=True
    )
    keys_cmd.add_parser("list", help="list the signing keys (public facts)").set_defaults(
        run=_with_resources(_keys_list)
    )
    keys_cmd.add_parser(
        "rotate", help="new signing keys: published now, signing after the propagation delay"
    ).set_defaults(run=_with_resources(_keys_rotate))
    return parser
