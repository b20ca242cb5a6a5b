"""Fixtures: a throwaway PostgreSQL, a migrated template database, a fresh clone per test.

The cluster is pgserver's embedded PostgreSQL unless ``AUTHSERVER_TEST_DATABASE_URL`` names a
server to use instead. Migrations run once, into a template; each test gets its own database
cloned from it, so tests never see each other's rows.
"""

from __future__ import annotations

import asyncio
import os
import queue
import shutil
import tempfile
import threading
import time
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
from starlette.types import ASGIApp

from authserver.config import Settings
from authserver.db.migrate import migrate
from authserver.db.store import Store
from authserver.oidc.keys import KeyLifecycle, KeyVault, SigningKeys
from authserver.security.keys import Keyring
from authserver.services import create_apps

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
        # One process, whatever the machine's CPUs, unless a test asks for more
        # (test_workers.py): the default would follow the CPU count.
        "AUTHSERVER_WORKERS": "1",
        # The same for introspection answers (test_introspection_cache.py switches it on).
        "AUTHSERVER_INTROSPECTION_CACHE_ENTRIES": "0",
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
        # would delete a running cluster's files. In memory where the machine has it: a
        # database cloned and dropped per test then costs tens of milliseconds, not hundreds.
        parent = Path(tempfile.mkdtemp(prefix="authserver-test-pg-", dir=_memory_dir()))
        server: Any = pgserver.get_server(  # type: ignore[attr-defined]
            parent / "data", cleanup_mode="delete"
        )
    try:
        url = server.get_uri()
        asyncio.run(_throwaway(url))
        yield url
    finally:
        server.cleanup()
        shutil.rmtree(parent, ignore_errors=True)


def _memory_dir() -> str | None:
    """Linux's shared-memory tmpfs when it is writable, else the default temporary directory."""
    # mkdtemp makes a private (0700) directory under it, with a random name.
    shm = Path("/dev/shm")  # noqa: S108
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


async def _throwaway(url: str) -> None:
    """This cluster's data dies with the run: no fsync, so cloning and dropping a database per
    test costs milliseconds instead of a checkpoint's worth of disk flushes."""
    conn = await asyncpg.connect(url)
    try:
        for setting in ("fsync", "full_page_writes", "synchronous_commit"):
            await conn.execute(f"ALTER SYSTEM SET {setting} = off")
        await conn.execute("SELECT pg_reload_conf()")
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def template_database(cluster_url: str) -> str:
    """A database with every migration applied and signing keys made (RSA key generation is
    slow enough to count when every served test does it), to clone per test."""
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
            lifecycle = KeyLifecycle(
                Store(conn),
                KeyVault(Keyring([SECRET_KEY])),
                SigningKeys(time.time),
                propagation=60,
                token_lifetime=3600,
            )
            await lifecycle.ensure()
            # Tests count audit events from an empty table; the key's birth is not theirs.
            await conn.execute("DELETE FROM audit_events")
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


class Databases:
    """Clones of the template made ahead of the tests that need them, and dropped after them,
    by a thread of its own: while a test waits on its server, the next test's database is
    being made, instead of every test paying for CREATE and DROP DATABASE in turn."""

    AHEAD = 2  # clones kept ready

    def __init__(self, cluster_url: str, template: str) -> None:
        self._cluster_url = cluster_url
        self._template = template
        self._ready: queue.Queue[str] = queue.Queue()
        self._done: queue.Queue[str | None] = queue.Queue()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._work()), daemon=True)
        self._thread.start()

    def take(self) -> str:
        while True:
            try:
                return self._ready.get(timeout=1.0)
            except queue.Empty:
                if self._failure is not None or not self._thread.is_alive():
                    raise RuntimeError("no test database could be made") from self._failure

    def give_back(self, url: str) -> None:
        self._done.put(url)

    def close(self) -> None:
        self._done.put(None)
        self._thread.join(timeout=60)

    async def _work(self) -> None:
        try:
            while True:
                full = self._ready.qsize() >= self.AHEAD
                try:
                    finished = self._done.get(timeout=0.5) if full else self._done.get_nowait()
                except queue.Empty:
                    finished = ""
                if finished is None:
                    break
                if finished:
                    await drop_database(self._cluster_url, finished)
                elif not full:
                    self._ready.put(await create_database(self._cluster_url, self._template))
            while not self._ready.empty():
                await drop_database(self._cluster_url, self._ready.get_nowait())
        except BaseException as exc:
            self._failure = exc
            raise


@pytest.fixture(scope="session")
def databases(cluster_url: str, template_database: str) -> Iterator[Databases]:
    made = Databases(cluster_url, template_database)
    yield made
    made.close()


@pytest.fixture
async def database_url(databases: Databases) -> AsyncIterator[str]:
    """A fresh, migrated database of this test's own."""
    url = await asyncio.to_thread(databases.take)
    yield url
    databases.give_back(url)


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


async def waiting_for_a_lock(db: asyncpg.Connection) -> None:
    """Return once a backend other than ``db``'s waits for a lock another transaction holds."""
    for _ in range(500):
        if await db.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> $1",
            db.get_server_pid(),
        ):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("nothing waited for a lock")


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings.from_env(server_environ(database_url))


class Clock:
    """The wall clock the apps read, which a test can move forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def served(settings: Settings, clock: Clock) -> AsyncIterator[tuple[ASGIApp, ASGIApp]]:
    """The public and the admin app of one server, started: one pool for both, as served."""
    public_app, admin_app = create_apps(settings, clock=clock)
    async with LifespanManager(public_app) as public, LifespanManager(admin_app) as admin:
        yield public.app, admin.app


@pytest.fixture
async def admin(served: tuple[ASGIApp, ASGIApp]) -> AsyncIterator[httpx.AsyncClient]:
    """The admin API, in process, authenticated with a configured admin token."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=served[1]),
        base_url="http://admin.test",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    ) as client:
        yield client


@pytest.fixture
async def public(served: tuple[ASGIApp, ASGIApp]) -> AsyncIterator[httpx.AsyncClient]:
    """The public API, in process."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=served[0]), base_url="https://auth.example.test"
    ) as client:
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


# The Phraseanet import (tests/test_phraseanet_*.py): a real MariaDB for the whole run, and a
# fresh appbox database per test.


@pytest.fixture(scope="session")
def mariadb() -> Iterator[Any]:
    """A throwaway MariaDB server (Debian's mariadb-server, which .ci/run installs)."""
    from tests.mariadb_server import installed, mariadb_server

    if not installed():
        if os.environ.get("CI"):
            pytest.fail("mariadbd is not installed: .ci/run should have installed it")
        pytest.skip("mariadbd is not installed (apt-get install mariadb-server)")
    with mariadb_server() as server:
        yield server


@pytest.fixture
def appbox(mariadb: Any) -> Iterator[Any]:
    """An empty Phraseanet appbox of this test's own, in the MariaDB server."""
    from tests.phraseanet_support import Appbox

    name = f"appbox_{uuid.uuid4().hex[:12]}"
    mariadb.create_appbox(name)
    yield Appbox(mariadb, name)
    mariadb.drop(name)
