"""S-66: a real server's logs never contain a secret, token, code or password.

Each test runs ``python -m authserver serve`` with access logs on, drives every token flow
(including failures) over HTTP, stops the server and searches everything it wrote.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.authorize_support import hidden_fields, location_params
from tests.authorize_support import query as authorize_query
from tests.conftest import (
    ADMIN_TOKEN,
    ALICE_PASSWORD,
    SECRET_KEY,
    create_database,
    drop_database,
)
from tests.live_server import LiveServer, live_server
from tests.oauth_support import issue_code, pkce_pair

FORM = "application/x-www-form-urlencoded"
WEB_REDIRECT = "https://photosync.example/cb"
WRONG_SECRET = "wrong-secret-d2d0f1b6a5c94e7f8a3b"


@dataclass
class Secrets:
    """Every secret value that crossed the wire while driving the server."""

    values: set[str] = field(default_factory=set)

    def add(self, *values: str) -> None:
        self.values.update(value for value in values if value)

    def found_in(self, text: str) -> list[str]:
        return sorted(value for value in self.values if value in text)


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


async def token_request(
    http: httpx.AsyncClient, secrets: Secrets, form: Mapping[str, str], authorization: str
) -> httpx.Response:
    secrets.add(authorization.removeprefix("Basic "))
    response = await http.post(
        "/oauth2/token",
        data=dict(form),
        headers={"Content-Type": FORM, "Authorization": authorization},
    )
    if response.status_code == 200:
        issued = response.json()
        secrets.add(issued["access_token"], issued.get("refresh_token", ""))
    return response


async def drive(
    server: LiveServer,
    db: asyncpg.Connection,
    web_client: dict[str, Any],
    introspector: dict[str, Any],
    alice: dict[str, Any],
) -> Secrets:
    """Run every flow against the server, successes and failures; return what was secret."""
    secrets = Secrets()
    secrets.add(ADMIN_TOKEN, SECRET_KEY, ALICE_PASSWORD, WRONG_SECRET)
    secrets.add(web_client["client_secret"], introspector["client_secret"])
    web_auth = basic(web_client["client_id"], web_client["client_secret"])
    async with (
        httpx.AsyncClient(base_url=server.admin_url, timeout=10.0) as admin,
        httpx.AsyncClient(base_url=server.public_url, timeout=10.0) as http,
    ):
        # An application registered through the admin listener: its secret is shown once.
        created = await admin.post(
            "/clients",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            json={
                "name": "Script",
                "website": "https://script.example",
                "type": "web",
                "redirect_uris": ["https://script.example/cb"],
                "owner_id": alice["user_id"],
                "password_grant": True,
            },
        )
        assert created.status_code == 201, created.text
        script = created.json()
        secrets.add(script["client_secret"])
        script_auth = basic(script["client_id"], script["client_secret"])

        cc = await token_request(http, secrets, {"grant_type": "client_credentials"}, web_auth)
        assert cc.status_code == 200, cc.text

        verifier, challenge = pkce_pair()
        code = await issue_code(
            db,
            web_client["client_id"],
            alice["user_id"],
            redirect_uri=WEB_REDIRECT,
            challenge=challenge,
        )
        secrets.add(code, verifier)
        exchange = {
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": WEB_REDIRECT,
        }
        exchanged = await token_request(http, secrets, exchange, web_auth)
        assert exchanged.status_code == 200, exchanged.text

        refresh = {
            "grant_type": "refresh_token",
            "refresh_token": exchanged.json()["refresh_token"],
        }
        refreshed = await token_request(http, secrets, refresh, web_auth)
        assert refreshed.status_code == 200, refreshed.text
        second = {"grant_type": "refresh_token", "refresh_token": refreshed.json()["refresh_token"]}
        assert (await token_request(http, secrets, second, web_auth)).status_code == 200
        reused = await token_request(http, secrets, refresh, web_auth)  # kills the family
        assert reused.status_code == 400
        replayed = await token_request(http, secrets, exchange, web_auth)
        assert replayed.status_code == 400

        password = {"grant_type": "password", "username": "alice", "password": ALICE_PASSWORD}
        granted = await token_request(http, secrets, password, script_auth)
        assert granted.status_code == 200, granted.text
        bad_password = {**password, "password": WRONG_SECRET}
        refused = await token_request(http, secrets, bad_password, script_auth)
        assert refused.status_code == 400

        wrong_auth = basic(web_client["client_id"], WRONG_SECRET)
        failed = await token_request(
            http, secrets, {"grant_type": "client_credentials"}, wrong_auth
        )
        assert failed.status_code == 401
        in_body = {
            "grant_type": "client_credentials",
            "client_id": web_client["client_id"],
            "client_secret": WRONG_SECRET,
        }
        failed_post = await http.post("/oauth2/token", data=in_body)
        assert failed_post.status_code == 401

        introspect_auth = basic(introspector["client_id"], introspector["client_secret"])
        secrets.add(introspect_auth.removeprefix("Basic "))
        access = cc.json()["access_token"]
        looked_up = await http.post(
            "/oauth2/introspect", data={"token": access}, headers={"Authorization": introspect_auth}
        )
        assert looked_up.json()["active"] is True
        revoked = await http.post(
            "/oauth2/revoke", data={"token": access}, headers={"Authorization": web_auth}
        )
        assert revoked.status_code == 200
        platform = await admin.post(
            "/introspect",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            json={"authorization": f"OAuth {granted.json()['access_token']}"},
        )
        assert platform.json()["active"] is True
    return secrets


async def run_and_read(
    database_url: str,
    tmp_path: Path,
    db: asyncpg.Connection,
    clients: tuple[dict[str, Any], dict[str, Any], dict[str, Any]],
    log_level: str,
) -> tuple[str, Secrets]:
    """Drive every flow against a server at ``log_level``; its whole output once it stopped."""
    log_path = tmp_path / "server.log"
    async with live_server(database_url, log_path, log_level=log_level) as server:
        secrets = await drive(server, db, *clients)
    return log_path.read_text(encoding="utf-8", errors="replace"), secrets


async def test_no_secrets_in_info_logs(
    database_url: str,
    tmp_path: Path,
    db: asyncpg.Connection,
    web_client: dict[str, Any],
    introspector: dict[str, Any],
    alice: dict[str, Any],
) -> None:
    """S-66: at INFO, with access logs, no secret, token, code or password reaches the logs."""
    output, secrets = await run_and_read(
        database_url, tmp_path, db, (web_client, introspector, alice), "INFO"
    )
    assert "POST /oauth2/token" in output  # the access log was on: the search means something
    assert secrets.found_in(output) == []


def log_records(output: str) -> list[dict[str, Any]]:
    """The server's JSON log lines (one object per line on stdout)."""
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


async def test_no_secrets_in_debug_logs(
    database_url: str,
    tmp_path: Path,
    db: asyncpg.Connection,
    web_client: dict[str, Any],
    introspector: dict[str, Any],
    alice: dict[str, Any],
) -> None:
    """S-66: even at DEBUG no secret, token, code or password reaches the logs."""
    output, secrets = await run_and_read(
        database_url, tmp_path, db, (web_client, introspector, alice), "DEBUG"
    )
    assert any(record["level"] == "DEBUG" for record in log_records(output))
    assert secrets.found_in(output) == []


async def test_oauthlib_never_logs_at_debug(
    database_url: str,
    tmp_path: Path,
    db: asyncpg.Connection,
    web_client: dict[str, Any],
    introspector: dict[str, Any],
    alice: dict[str, Any],
) -> None:
    """S-66/F4: with AUTHSERVER_LOG_LEVEL=DEBUG the oauthlib logger still stays at INFO."""
    output, _ = await run_and_read(
        database_url, tmp_path, db, (web_client, introspector, alice), "DEBUG"
    )
    debug = [record["logger"] for record in log_records(output) if record["level"] == "DEBUG"]
    assert debug  # other loggers did log at DEBUG
    assert [name for name in debug if name.startswith("oauthlib")] == []


# A full run: the admin API, the browser flow and every grant, each secret collected as it
# crosses the wire; then the server's whole output is checked line by line.

CAROL_PASSWORD = "carol's long passphrase 7c1e"
CAROL_WRONG = "carol's wrong passphrase 0d9b"
SESSION_COOKIE = "__Host-authserver_session"


@dataclass(frozen=True)
class FullRun:
    output: str
    secrets: Secrets
    client_id: str


@dataclass
class Browser:
    """A browser on the public listener: keeps the session cookie (Secure, so httpx would not
    send it over plain HTTP) and notes every value it is given as a secret."""

    http: httpx.AsyncClient
    secrets: Secrets
    cookie: str | None = None

    async def request(self, method: str, url: str, form: dict[str, str] | None = None) -> Any:
        headers = {"Cookie": f"{SESSION_COOKIE}={self.cookie}"} if self.cookie else {}
        response = await self.http.request(method, url, data=form, headers=headers)
        for header in response.headers.get_list("set-cookie"):
            name, _, rest = header.partition("=")
            if name == SESSION_COOKIE:
                self.cookie = rest.split(";", 1)[0]
                self.secrets.add(self.cookie)
        fields = hidden_fields(response.text)
        self.secrets.add(fields.get("csrf_token", ""), fields.get("request", ""))
        return response


async def full_flows(server: LiveServer) -> tuple[Secrets, str]:
    """Every flow over HTTP; the secrets it created or sent, and the web app's client id."""
    secrets = Secrets()
    secrets.add(ADMIN_TOKEN, SECRET_KEY, CAROL_PASSWORD, CAROL_WRONG, WRONG_SECRET)
    admin_headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with (
        httpx.AsyncClient(base_url=server.admin_url, headers=admin_headers, timeout=10) as admin,
        httpx.AsyncClient(base_url=server.public_url, timeout=10.0) as http,
    ):
        user = await admin.put(
            "/users/carol-1", json={"login": "carol", "password": CAROL_PASSWORD}
        )
        assert user.status_code == 201, user.text
        owner = await admin.put("/users/owner-2", json={"login": "olivia"})
        assert owner.status_code == 201, owner.text
        app = {
            "name": "Photo Sync",
            "website": "https://photosync.example",
            "type": "web",
            "redirect_uris": [WEB_REDIRECT],
            "owner_id": "owner-2",  # its developer token is the owner's; carol consents herself
            "password_grant": True,
        }
        created = await admin.post("/clients", json=app)
        assert created.status_code == 201, created.text
        client_id = created.json()["client_id"]
        secrets.add(created.json()["client_secret"])
        rotated = await admin.post(f"/clients/{client_id}/secret")
        assert rotated.status_code == 201, rotated.text
        secret = rotated.json()["client_secret"]
        secrets.add(secret)
        developer = await admin.post(f"/clients/{client_id}/developer-token")
        assert developer.status_code == 201, developer.text
        secrets.add(developer.json()["access_token"])
        checker = await admin.post(
            "/clients", json={**app, "name": "Phraseanet API", "introspection": True}
        )
        assert checker.status_code == 201, checker.text
        secrets.add(checker.json()["client_secret"])
        web_auth = basic(client_id, secret)
        checker_auth = basic(checker.json()["client_id"], checker.json()["client_secret"])
        secrets.add(checker_auth.removeprefix("Basic "))

        cc = await token_request(http, secrets, {"grant_type": "client_credentials"}, web_auth)
        assert cc.status_code == 200, cc.text

        # The browser flow: a wrong password, the right one, consent, the code.
        verifier, challenge = pkce_pair()
        secrets.add(verifier)
        browser = Browser(http, secrets)
        authorize = "/oauth2/authorize?" + authorize_query(
            {"client_id": client_id}, challenge=challenge
        )
        page = await browser.request("GET", authorize)
        assert page.status_code == 200, page.text
        fields = hidden_fields(page.text)
        login = {**fields, "username": "carol", "password": CAROL_WRONG}
        refused = await browser.request("POST", "/oauth2/authorize", login)
        assert refused.status_code == 400, refused.text
        login = {**hidden_fields(refused.text), "username": "carol", "password": CAROL_PASSWORD}
        signed_in = await browser.request("POST", "/oauth2/authorize", login)
        assert signed_in.status_code == 303, signed_in.text
        consent = await browser.request("GET", signed_in.headers["location"])
        assert 'value="consent"' in consent.text, consent.text
        allowed = await browser.request(
            "POST", "/oauth2/authorize", {**hidden_fields(consent.text), "decision": "allow"}
        )
        assert allowed.status_code == 303, allowed.text
        code = location_params(allowed)["code"]
        secrets.add(code)

        exchange = {
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": WEB_REDIRECT,
        }
        exchanged = await token_request(http, secrets, exchange, web_auth)
        assert exchanged.status_code == 200, exchanged.text
        refresh = {
            "grant_type": "refresh_token",
            "refresh_token": exchanged.json()["refresh_token"],
        }
        refreshed = await token_request(http, secrets, refresh, web_auth)
        assert refreshed.status_code == 200, refreshed.text
        password = {"grant_type": "password", "username": "carol", "password": CAROL_PASSWORD}
        granted = await token_request(http, secrets, password, web_auth)
        assert granted.status_code == 200, granted.text

        looked_up = await http.post(
            "/oauth2/introspect",
            data={"token": refreshed.json()["access_token"]},
            headers={"Authorization": checker_auth},
        )
        assert looked_up.json()["active"] is True
        revoked = await http.post(
            "/oauth2/revoke",
            data={"token": refreshed.json()["refresh_token"]},
            headers={"Authorization": web_auth},
        )
        assert revoked.status_code == 200
        platform = await admin.post(
            "/introspect", json={"authorization": f"OAuth {developer.json()['access_token']}"}
        )
        assert platform.json()["active"] is True
    return secrets, client_id


@pytest.fixture(scope="module")
def full_run(
    cluster_url: str, template_database: str, tmp_path_factory: pytest.TempPathFactory
) -> FullRun:
    """A server at INFO driven through every flow, stopped; its output and the run's secrets."""

    async def run() -> FullRun:
        database_url = await create_database(cluster_url, template_database)
        try:
            log_path = tmp_path_factory.mktemp("full-run") / "server.log"
            async with live_server(database_url, log_path, log_level="INFO") as server:
                secrets, client_id = await full_flows(server)
            return FullRun(log_path.read_text(encoding="utf-8"), secrets, client_id)
        finally:
            await drop_database(cluster_url, database_url)

    return asyncio.run(run())


def test_full_run_leaks_no_secret(full_run: FullRun) -> None:
    """No secret a full run created or sent (admin, browser, every grant) is in its logs."""
    assert len(full_run.secrets.values) >= 25  # the run did collect what it meant to
    assert full_run.secrets.found_in(full_run.output) == []


def test_every_output_line_is_a_json_record(full_run: FullRun) -> None:
    """Each line the server wrote is one JSON object with a timestamp, a level and a message."""
    lines = full_run.output.splitlines()
    assert len(lines) > 20  # the run did log: start-up, an access line per request, shutdown
    for line in lines:
        record = json.loads(line)
        assert isinstance(record, dict), line
        assert {"timestamp", "level", "message"} <= record.keys(), line
        assert datetime.fromisoformat(record["timestamp"]).tzinfo is not None
        assert record["level"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def test_request_lines_carry_request_fields(full_run: FullRun) -> None:
    """Each access line has request_id, route, status and duration_ms; token lines the client."""
    access = [
        record for record in log_records(full_run.output) if record["logger"] == "authserver.access"
    ]
    assert len(access) >= 20
    for record in access:
        assert {"request_id", "route", "status", "duration_ms", "method", "listener"} <= set(
            record
        ), record
        assert isinstance(record["status"], int)
        assert isinstance(record["duration_ms"], float | int)
        assert record["route"].startswith("/")
    assert len({record["request_id"] for record in access}) == len(access)
    token_lines = [record for record in access if record["route"] == "/oauth2/token"]
    assert token_lines
    assert any(record.get("client_id") == full_run.client_id for record in token_lines)
