"""The ``authserver`` command, run in process against a fresh database per test."""

from __future__ import annotations

import asyncio
import io
import json
import sys
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from argon2 import PasswordHasher

from authserver.cli import main
from tests import conftest

PASSWORD = "correct horse battery staple"
WEBSITE = "https://photosync.example"
REDIRECT = "https://photosync.example/cb"


@dataclass(frozen=True)
class Outcome:
    status: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


class Cli:
    """Runs ``authserver`` in process with a given environment and captures what it prints."""

    def __init__(
        self, environ: dict[str, str], capsys: pytest.CaptureFixture[str], mp: pytest.MonkeyPatch
    ) -> None:
        self.environ = environ
        self._capsys = capsys
        self._mp = mp

    def __call__(self, *argv: str, stdin: str = "") -> Outcome:
        self._capsys.readouterr()  # drop anything printed before this command
        self._mp.setattr(sys, "stdin", io.StringIO(stdin))
        status = main(list(argv), environ=self.environ)
        captured = self._capsys.readouterr()
        return Outcome(status, captured.out, captured.err)

    def ok(self, *argv: str, stdin: str = "") -> Any:
        """Run a command that must succeed; its JSON output, or None when it prints nothing."""
        outcome = self(*argv, stdin=stdin)
        assert outcome.status == 0, outcome.stderr
        return outcome.json() if outcome.stdout.strip() else None


def fetchval(database_url: str, sql: str, *args: object) -> Any:
    """One value from the test's database, read directly."""

    async def go() -> Any:
        conn = await asyncpg.connect(database_url)
        try:
            return await conn.fetchval(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(go())


def assert_one_line_error(outcome: Outcome) -> None:
    """Exit status 1, nothing on stdout, and a single ``authserver:`` line on stderr."""
    assert outcome.status == 1
    assert outcome.stdout == ""
    assert outcome.stderr.startswith("authserver: ")
    assert outcome.stderr.count("\n") == 1
    assert outcome.stderr.endswith("\n")
    assert "Traceback" not in outcome.stderr


@pytest.fixture
def cli(
    database_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Cli:
    """The CLI, configured for this test's database."""
    return Cli(conftest.server_environ(database_url), capsys, monkeypatch)


@pytest.fixture
def bare_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    """The CLI with no configuration at all."""
    return Cli({}, capsys, monkeypatch)


def register(
    cli: Cli, owner: str, *flags: str, website: str = WEBSITE, redirect: str | None = REDIRECT
) -> Outcome:
    """``clients create`` for ``owner``, with ``flags`` added."""
    argv = ["clients", "create", "--owner", owner, "--name", "Photo Sync", "--website", website]
    if redirect is not None:
        argv += ["--redirect-uri", redirect]
    return cli(*argv, *flags)


@pytest.fixture
def owner(cli: Cli) -> str:
    """The user id of a provisioned developer."""
    cli.ok("users", "create", "owner-1", "--login", "olivia", "--email", "olivia@example.com")
    return "owner-1"


@pytest.fixture
def web_app(cli: Cli, owner: str) -> dict[str, Any]:
    """A web application registered through the CLI, as printed at creation."""
    outcome = register(cli, owner)
    assert outcome.status == 0, outcome.stderr
    created: dict[str, Any] = outcome.json()
    return created


# users


def test_users_create_prints_user(cli: Cli) -> None:
    """``users create`` prints the new user as JSON."""
    user = cli.ok(
        "users",
        "create",
        "u-1",
        "--login",
        "alice",
        "--email",
        "alice@example.com",
        "--display-name",
        "Alice",
    )
    assert user["user_id"] == "u-1"
    assert user["login"] == "alice"
    assert user["email"] == "alice@example.com"
    assert user["display_name"] == "Alice"
    assert user["has_password"] is False


def test_users_create_stores_password_hashed(cli: Cli, database_url: str) -> None:
    """``--password-stdin``'s first line becomes the password, kept only as an argon2id hash."""
    user = cli.ok(
        "users", "create", "u-1", "--login", "alice", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert user["has_password"] is True
    stored = fetchval(database_url, "SELECT password_hash FROM users WHERE user_id = 'u-1'")
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    assert PasswordHasher().verify(stored, PASSWORD)


def test_users_create_never_prints_password(cli: Cli) -> None:
    """Neither stdout nor stderr of ``users create`` contains the password or its hash."""
    outcome = cli("users", "create", "u-1", "--login", "alice", "--password-stdin", stdin=PASSWORD)
    assert outcome.status == 0
    assert PASSWORD not in outcome.stdout + outcome.stderr
    assert "argon2" not in outcome.stdout + outcome.stderr


def test_users_create_unverified_email_by_default(cli: Cli) -> None:
    """Without ``--email-verified`` the user's e-mail address is not marked verified."""
    user = cli.ok("users", "create", "u-1", "--login", "alice", "--email", "a@example.com")
    assert user["email_verified"] is False


def test_users_create_email_verified(cli: Cli) -> None:
    """``--email-verified`` marks the address as checked by the platform."""
    user = cli.ok(
        "users", "create", "u-1", "--login", "alice", "--email", "a@example.com", "--email-verified"
    )
    assert user["email_verified"] is True


def test_users_create_email_verified_without_email_fails(cli: Cli) -> None:
    """``--email-verified`` without an address is a one-line error."""
    assert_one_line_error(cli("users", "create", "u-1", "--login", "alice", "--email-verified"))


def test_users_delete_removes_user(cli: Cli, owner: str, database_url: str) -> None:
    """``users delete`` removes the user and prints nothing."""
    outcome = cli("users", "delete", owner)
    assert (outcome.status, outcome.stdout) == (0, "")
    assert fetchval(database_url, "SELECT count(*) FROM users") == 0


def test_users_delete_unknown_user_fails(cli: Cli) -> None:
    """Deleting an unknown user is a one-line error with status 1."""
    assert_one_line_error(cli("users", "delete", "nobody"))


# clients


def test_clients_create_prints_id_and_secret(web_app: dict[str, Any]) -> None:
    """``clients create`` prints the application with its client id and its secret."""
    assert web_app["client_id"]
    assert isinstance(web_app["client_secret"], str)
    assert len(web_app["client_secret"]) >= 43  # 256 bits, base64url
    assert web_app["type"] == "web"
    assert web_app["redirect_uris"] == [REDIRECT]
    assert web_app["owner_id"] == "owner-1"


def test_clients_create_defaults_flags_off(web_app: dict[str, Any]) -> None:
    """Without flags the password grant, introspection and the device grant are off."""
    assert web_app["password_grant"] is False
    assert web_app["introspection"] is False
    assert web_app["device_grant"] is False


def test_clients_create_sets_flags(cli: Cli, owner: str) -> None:
    """``--password-grant`` and ``--introspection`` enable both."""
    created = register(cli, owner, "--password-grant", "--introspection").json()
    assert created["password_grant"] is True
    assert created["introspection"] is True


def test_clients_create_sets_token_exchange_flags(cli: Cli, owner: str) -> None:
    """``--token-exchange`` and ``--resource-server`` enable RFC 8693 exchange and audience."""
    created = register(cli, owner, "--token-exchange", "--resource-server").json()
    assert created["token_exchange"] is True
    assert created["resource_server"] is True


def test_clients_create_desktop_token_exchange_fails(cli: Cli, owner: str) -> None:
    """A desktop application may not exchange tokens: one line, exit 1."""
    outcome = register(cli, owner, "--type", "desktop", "--token-exchange", redirect=None)
    assert_one_line_error(outcome)
    assert "token_exchange" in outcome.stderr


def test_clients_create_with_device_grant(cli: Cli, owner: str) -> None:
    """``--device-grant`` lets the application use RFC 8628's grant."""
    created = register(cli, owner, "--type", "desktop", "--device-grant", redirect=None).json()
    assert created["device_grant"] is True


def test_clients_create_requires_pkce_by_default(web_app: dict[str, Any]) -> None:
    """D17: a web application needs PKCE unless told otherwise."""
    assert web_app["require_pkce"] is True


def test_clients_create_without_pkce(cli: Cli, owner: str) -> None:
    """``--no-require-pkce`` lets a web application redeem codes without PKCE."""
    assert register(cli, owner, "--no-require-pkce").json()["require_pkce"] is False


def test_clients_create_desktop_without_pkce_fails(cli: Cli, owner: str) -> None:
    """A desktop application cannot go without PKCE: one line, exit 1."""
    outcome = register(cli, owner, "--type", "desktop", "--no-require-pkce", redirect=None)
    assert_one_line_error(outcome)
    assert "PKCE" in outcome.stderr


def test_clients_create_desktop_has_no_secret(cli: Cli, owner: str) -> None:
    """A desktop application is a public client: no secret, the default loopback redirects."""
    created = register(cli, owner, "--type", "desktop", redirect=None).json()
    assert created["type"] == "desktop"
    assert created["client_secret"] is None
    assert created["token_endpoint_auth_method"] == "none"
    assert created["redirect_uris"] == ["http://127.0.0.1/callback", "urn:ietf:wg:oauth:2.0:oob"]


def test_clients_create_signs_id_tokens_with_rs256_by_default(web_app: dict[str, Any]) -> None:
    """Without ``--id-token-alg`` an application's ID tokens are signed with RS256."""
    assert web_app["id_token_signed_response_alg"] == "RS256"
    assert web_app["post_logout_redirect_uris"] == []


def test_clients_create_id_token_alg(cli: Cli, owner: str) -> None:
    """``--id-token-alg ES256`` is stored on the application."""
    created = register(cli, owner, "--id-token-alg", "ES256").json()
    assert created["id_token_signed_response_alg"] == "ES256"


def test_clients_create_unknown_id_token_alg_fails(cli: Cli, owner: str) -> None:
    """An algorithm ID tokens are not signed with (HS256) is refused by the parser."""
    with pytest.raises(SystemExit) as exited:
        register(cli, owner, "--id-token-alg", "HS256")
    assert exited.value.code == 2


def test_clients_create_post_logout_redirect_uris(cli: Cli, owner: str) -> None:
    """``--post-logout-redirect-uri`` repeats, one registered URI each."""
    uris = ["https://photosync.example/bye", "https://photosync.example/again"]
    created = register(
        cli, owner, "--post-logout-redirect-uri", uris[0], "--post-logout-redirect-uri", uris[1]
    ).json()
    assert created["post_logout_redirect_uris"] == uris


def test_clients_create_bad_post_logout_redirect_uri_fails(cli: Cli, owner: str) -> None:
    """A post-logout URI with a fragment is refused with a one-line error."""
    outcome = register(cli, owner, "--post-logout-redirect-uri", "https://photosync.example/#x")
    assert_one_line_error(outcome)


def test_clients_list_shows_all(cli: Cli, web_app: dict[str, Any]) -> None:
    """``clients list`` prints every application, without secrets."""
    other = "other-1"
    cli.ok("users", "create", other, "--login", "oscar")
    second = register(cli, other).json()
    listed = cli.ok("clients", "list")
    assert sorted(app["client_id"] for app in listed) == sorted(
        [web_app["client_id"], second["client_id"]]
    )
    assert all("client_secret" not in app for app in listed)


def test_clients_list_by_owner(cli: Cli, web_app: dict[str, Any]) -> None:
    """``clients list --owner`` prints only that user's applications."""
    cli.ok("users", "create", "other-1", "--login", "oscar")
    assert register(cli, "other-1").status == 0
    listed = cli.ok("clients", "list", "--owner", "owner-1")
    assert [app["client_id"] for app in listed] == [web_app["client_id"]]


def test_clients_list_empty(cli: Cli) -> None:
    """With no applications, ``clients list`` prints an empty JSON list."""
    assert cli.ok("clients", "list") == []


def test_clients_show(cli: Cli, web_app: dict[str, Any]) -> None:
    """``clients show`` prints the application without its secret."""
    shown = cli.ok("clients", "show", web_app["client_id"])
    assert shown == {key: value for key, value in web_app.items() if key != "client_secret"}


def test_clients_rotate_secret_prints_new_secret(cli: Cli, web_app: dict[str, Any]) -> None:
    """``clients rotate-secret`` prints a new secret, different from the first one."""
    rotated = cli.ok("clients", "rotate-secret", web_app["client_id"])
    assert rotated["client_id"] == web_app["client_id"]
    assert rotated["client_secret"]
    assert rotated["client_secret"] != web_app["client_secret"]
    assert rotated["previous_secret_valid_for"] == 86400


def test_clients_rotate_secret_of_desktop_app_fails(cli: Cli, owner: str) -> None:
    """A desktop application has no secret to rotate: a one-line error with status 1."""
    created = register(cli, owner, "--type", "desktop", redirect=None).json()
    assert_one_line_error(cli("clients", "rotate-secret", created["client_id"]))


def test_clients_delete(cli: Cli, web_app: dict[str, Any], database_url: str) -> None:
    """``clients delete`` removes the application and prints nothing."""
    outcome = cli("clients", "delete", web_app["client_id"])
    assert (outcome.status, outcome.stdout) == (0, "")
    assert fetchval(database_url, "SELECT count(*) FROM clients") == 0


# errors


@pytest.mark.parametrize("action", ["show", "rotate-secret", "delete"])
def test_unknown_client_id_fails(cli: Cli, action: str) -> None:
    """An unknown client id is a one-line not_found error with status 1."""
    outcome = cli("clients", action, "no-such-client")
    assert_one_line_error(outcome)
    assert "not_found" in outcome.stderr


def test_malformed_client_id_fails(cli: Cli) -> None:
    """A client id outside the allowed shape is a one-line error, never a database error."""
    outcome = cli("clients", "show", "bad id;")
    assert_one_line_error(outcome)
    assert "invalid_request" in outcome.stderr


def test_invalid_website_fails(cli: Cli, owner: str, database_url: str) -> None:
    """A website that is not an http(s) URL is a one-line error and registers nothing."""
    outcome = register(cli, owner, website="ftp://files.example")
    assert_one_line_error(outcome)
    assert "website" in outcome.stderr
    assert fetchval(database_url, "SELECT count(*) FROM clients") == 0


def test_unknown_owner_fails(cli: Cli) -> None:
    """Registering an application for an unknown owner is a one-line not_found error."""
    outcome = register(cli, "ghost")
    assert_one_line_error(outcome)
    assert "not_found" in outcome.stderr


def test_web_app_without_redirect_uri_fails(cli: Cli, owner: str) -> None:
    """A web application without a redirect URI is a one-line invalid_request error."""
    outcome = register(cli, owner, redirect=None)
    assert_one_line_error(outcome)
    assert "redirect_uris" in outcome.stderr


def test_unreachable_database_fails(cluster_url: str, bare_cli: Cli) -> None:
    """A database that does not exist is a one-line error with status 1."""
    bare_cli.environ = conftest.server_environ(
        conftest.with_database(cluster_url, "no_such_database")
    )
    assert_one_line_error(bare_cli("clients", "list"))


# help and migrate

COMMANDS = [
    [],
    ["serve"],
    ["migrate"],
    ["users"],
    ["users", "create"],
    ["users", "delete"],
    ["clients"],
    ["clients", "create"],
    ["clients", "list"],
    ["clients", "show"],
    ["clients", "rotate-secret"],
    ["clients", "delete"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "authserver")
def test_help(bare_cli: Cli, capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    """``--help`` prints usage and exits 0, without any configuration."""
    with pytest.raises(SystemExit) as exited:
        bare_cli(*command, "--help")
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("usage: authserver " + " ".join(command))


def test_migrate_on_migrated_database(cli: Cli) -> None:
    """``migrate`` on a migrated database says the schema is up to date."""
    outcome = cli("migrate")
    assert outcome.status == 0
    assert outcome.stdout == "the schema is up to date\n"


def test_migrate_applies_pending(bare_cli: Cli, empty_database_url: str) -> None:
    """``migrate`` on an empty database applies every migration and names them."""
    bare_cli.environ = conftest.server_environ(empty_database_url)
    outcome = bare_cli("migrate")
    assert outcome.status == 0
    assert outcome.stdout.startswith("applied: 0001_init")


def test_keys_rotate_adds_a_key_per_algorithm(cli: Cli) -> None:
    """``keys rotate`` makes one new RS256 and one new ES256 key, and ``keys list`` shows them."""
    before = {key["kid"] for key in cli.ok("keys", "list")}
    rotated = cli.ok("keys", "rotate")
    assert len(rotated["rotated"]) == 2
    listed = cli.ok("keys", "list")
    new = [key for key in listed if key["kid"] in rotated["rotated"]]
    assert sorted(key["alg"] for key in new) == ["ES256", "RS256"]
    assert not set(rotated["rotated"]) & before
    assert all(not key["signing"] for key in new)  # not before every replica has them


def test_keys_list_shows_no_private_part(cli: Cli) -> None:
    """``keys list`` prints ids, algorithms and dates, never key material."""
    cli.ok("keys", "rotate")
    for key in cli.ok("keys", "list"):
        assert set(key) == {"kid", "alg", "active_from", "retired_at", "expires_at", "signing"}
