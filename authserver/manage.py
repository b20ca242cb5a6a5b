"""The ``authserver users``, ``clients`` and ``keys`` commands: what the admin API does, for an
operator's shell. Each prints its answer as JSON on stdout."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from authserver import clients
from authserver.config import Settings
from authserver.oidc.keys import ALGORITHMS
from authserver.serialize import client_json, user_json
from authserver.services import Services, open_services

Command = Callable[[Services, argparse.Namespace], Awaitable[Any]]


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
        "--token-exchange",
        action="store_true",
        help="let this web application exchange access tokens it holds (RFC 8693)",
    )
    create.add_argument(
        "--resource-server",
        action="store_true",
        help="let exchanged tokens be addressed to this web application (RFC 8693 audience)",
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
        "token_exchange": args.token_exchange,
        "resource_server": args.resource_server,
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
