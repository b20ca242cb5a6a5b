"""Fixtures: a throwaway PostgreSQL, a migrated template database, a fresh clone per test.

The cluster is pgserver's embedded PostgreSQL unless ``AUTHSERVER_TEST_DATABASE_URL`` names a
server to use instead. Migrations run once, into a template; each test gets its own database
cloned from it, so tests never see each other's rows.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager

from authserver.app import create_apps
from authserver.config import Settings
from authserver.db.migrate import migrate

ADMIN_TOKEN = "test-admin-token-0123456789abcdefghijklmnop"
SECRET_KEY = "test-secret-key-0123456789abcdefghijklmnopq"

# Cheapest argon2 parameters: tests check behaviour, not hashing cost.
CHEAP_ARGON2 = {
    "AUTHSERVER_ARGON2_TIME_COST": "1",
    "AUTHSERVER_ARGON2_MEMORY_COST": "8",
    "AUTHSERVER_ARGON2_PARALLELISM": "1",
}


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` (socket-directory URLs keep their query)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def server_environ(database_url: str, **overrides: str) -> dict[str, str]:
    """The environment a test server runs with."""
    env = {
        "AUTHSERVER_DATABASE_URL": database_url,
        "AUTHSERVER_ISSUER": "https://auth.example.test",
        "AUTHSERVER_SECRET_KEYS": SECRET_KEY,
        "AUTHSERVER_ADMIN_TOKENS": ADMIN_TOKEN,
        "AUTHSERVER_POOL_MIN_SIZE": "1",
        "AUTHSERVER_POOL_MAX_SIZE": "4",
        # Most tests change a client and use it in the next breath; the client cache follows
        # changes through PostgreSQL notifications, milliseconds later, and has tests of its own
        # (test_client_cache.py) with it switched on.
        "AUTHSERVER_CLIENT_CACHE_TTL": "0",
        **CHEAP_ARGON2,
    }
    env.update({f"AUTHSERVER_{key.upper()}": value for key, value in overrides.items()})
    return env


@pytest.fixture(scope="session")
def cluster_url() -> Iterator[str]:
    """A PostgreSQL server for the whole run, as a URL to its maintenance database."""
    given = os.environ.get("AUTHSERVER_TEST_DATABASE_URL", "").strip()
    if given:
        yield given
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR unset in CI
        import pgserver

        # Not under pytest's basetemp: a concurrent pytest run prunes old basetemps, and
        # would delete a running cluster's files.
        parent = Path(tempfile.mkdtemp(prefix="authserver-test-pg-"))
        server: Any = pgserver.get_server(  # type: ignore[attr-defined]
            parent / "data", cleanup_mode="delete"
        )
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture(scope="session")
def template_database(cluster_url: str) -> str:
    """A database with every migration applied, to clone per test."""
    name = f"authserver_template_{uuid.uuid4().hex[:8]}"

    async def build() -> None:
        admin = await asyncpg.connect(cluster_url)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        conn = await asyncpg.connect(with_database(cluster_url, name))
        try:
            await migrate(conn)
        finally:
            await conn.close()

    asyncio.run(build())
    return name


async def create_database(cluster_url: str, template: str | None = None) -> str:
    """A new database on the cluster (a clone of ``template``, or empty); its URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    clone = f' TEMPLATE "{template}"' if template else ""
    admin = await asyncpg.connect(cluster_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"{clone}')
    finally:
        await admin.close()
    return with_database(cluster_url, name)


async def drop_database(cluster_url: str, database_url: str) -> None:
    name = urlsplit(database_url).path.lstrip("/")
    admin = await asyncpg.connect(cluster_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def database_url(cluster_url: str, template_database: str) -> AsyncIterator[str]:
    """A fresh, migrated database of this test's own."""
    url = await create_database(cluster_url, template_database)
    yield url
    await drop_database(cluster_url, url)


@pytest.fixture
async def empty_database_url(cluster_url: str) -> AsyncIterator[str]:
    """A database of this test's own with no schema at all."""
    url = await create_database(cluster_url)
    yield url
    await drop_database(cluster_url, url)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection, for looking at what the server stored."""
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings.from_env(server_environ(database_url))


@pytest.fixture
async def admin(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The admin API, in process, authenticated with a configured admin token."""
    _, app = create_apps(settings)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app),
            base_url="http://admin.test",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ) as client,
    ):
        yield client


@pytest.fixture
async def public(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The public API, in process."""
    app, _ = create_apps(settings)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="https://auth.example.test"
        ) as client,
    ):
        yield client


@pytest.fixture
async def owner(admin: httpx.AsyncClient) -> dict[str, Any]:
    """A provisioned user who owns applications."""
    response = await admin.put(
        "/users/owner-1",
        json={"login": "olivia", "email": "olivia@example.com", "display_name": "Olivia"},
    )
    assert response.status_code == 201
    body: dict[str, Any] = response.json()
    return body


async def register_client(
    admin: httpx.AsyncClient, owner: dict[str, Any], **fields: Any
) -> dict[str, Any]:
    """Register a client owned by ``owner`` through the admin API; the 201 answer's body."""
    response = await admin.post("/clients", json={**fields, "owner_id": owner["user_id"]})
    assert response.status_code == 201
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
async def web_client(admin: httpx.AsyncClient, owner: dict[str, Any]) -> dict[str, Any]:
    """A registered web application, with its secret as returned once at creation."""
    return await register_client(
        admin,
        owner,
        name="Photo Sync",
        description="Syncs your photos",
        website="https://photosync.example",
        type="web",
        redirect_uris=["https://photosync.example/cb"],
    )


ALICE_PASSWORD = "correct horse battery staple"


@pytest.fixture
async def alice(admin: httpx.AsyncClient) -> dict[str, Any]:
    """A user who signs in with a password."""
    response = await admin.put(
        "/users/alice-1",
        json={"login": "alice", "email": "alice@example.com", "password": ALICE_PASSWORD},
    )
    assert response.status_code == 201
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
async def desktop_client(admin: httpx.AsyncClient, owner: dict[str, Any]) -> dict[str, Any]:
    """A registered desktop application: a public client with the default redirect URIs."""
    return await register_client(
        admin, owner, name="Desk Uploader", website="https://desk.example", type="desktop"
    )


@pytest.fixture
async def introspector(admin: httpx.AsyncClient, owner: dict[str, Any]) -> dict[str, Any]:
    """A confidential client allowed to introspect: a Phraseanet service."""
    return await register_client(
        admin,
        owner,
        name="Phraseanet API",
        website="https://phraseanet.example",
        type="web",
        redirect_uris=["https://phraseanet.example/cb"],
        introspection=True,
    )


@pytest.fixture
async def tokens(
    public: httpx.AsyncClient,
    db: asyncpg.Connection,
    web_client: dict[str, Any],
    alice: dict[str, Any],
) -> dict[str, Any]:
    """The access and refresh token the web client got for alice by redeeming a code."""
    from tests.token_support import web_tokens  # token_support imports this module

    return await web_tokens(public, db, web_client, alice)
