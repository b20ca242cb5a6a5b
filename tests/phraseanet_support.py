"""Helpers for the Phraseanet import's tests: an appbox the tests fill row by row in a real
MariaDB, and a run of the import into the test's PostgreSQL database."""

from __future__ import annotations

import hashlib
import secrets
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from authserver.config import Settings
from authserver.db.pool import create_pool
from authserver.db.store import Store
from authserver.phraseanet.importer import ImportOptions, import_appbox
from authserver.phraseanet.progress import Progress
from authserver.phraseanet.report import Report
from authserver.phraseanet.source import AppboxUrl
from authserver.phraseanet.writer import Batches
from authserver.security.legacy import HMAC_SHA512, SHA256, legacy_hex
from tests import conftest
from tests.mariadb_server import MariaDB

SITE_KEY = "3f9c1a7e5b2d8046"  # a 4.x main.key: 16 characters
ALNUM = string.ascii_letters + string.digits
BASE64ISH = "+/" + string.digits + string.ascii_uppercase + string.ascii_lowercase
CREATED = datetime(2021, 3, 4, 5, 6, 7)


def alnum(length: int = 32) -> str:
    return "".join(secrets.choice(ALNUM) for _ in range(length))


def nonce(length: int) -> str:
    """A Phraseanet nonce: 64 of RandomLib's base64 alphabet (4.x), or 16 or 8 alphanumerics."""
    alphabet = BASE64ISH if length == 64 else ALNUM
    return "".join(secrets.choice(alphabet) for _ in range(length))


def hmac_hash(password: str, salt: str | None, key: str = SITE_KEY) -> str:
    found = legacy_hex(HMAC_SHA512, password, salt, key)
    assert found is not None
    return found


def sha256_hash(password: str) -> str:
    found = legacy_hex(SHA256, password, None, None)
    assert found is not None
    return found


@dataclass(frozen=True)
class App:
    id: int
    client_id: str
    client_secret: str


class Appbox:
    """One appbox database, filled by the test through Phraseanet's own columns."""

    def __init__(self, server: MariaDB, database: str) -> None:
        self.server = server
        self.database = database
        self.url = server.url(database)

    def _insert(self, table: str, row: dict[str, Any]) -> int:
        names = ", ".join(f"`{name}`" for name in row)
        marks = ", ".join(["%s"] * len(row))
        with self.server.connect(self.database) as conn, conn.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO `{table}` ({names}) VALUES ({marks})",
                list(row.values()),
            )
            return int(cursor.lastrowid)

    def execute(self, sql: str, *args: object) -> None:
        with self.server.connect(self.database) as conn, conn.cursor() as cursor:
            cursor.execute(sql, args)

    def user(self, login: str, **columns: Any) -> int:
        """A user who may sign in unless ``columns`` say otherwise; no password by default."""
        row: dict[str, Any] = {
            "login": login,
            "email": f"{login}@example.com",
            "password": None,
            "nonce": None,
            "salted_password": 1,
            "created": CREATED,
            "updated": CREATED,
            **columns,
        }
        return self._insert("Users", row)

    def user_with_password(
        self,
        login: str,
        password: str,
        *,
        scheme: str = "hmac",
        salt: str | None = None,
        **more: Any,
    ) -> int:
        """A user whose Phraseanet hash is of ``password`` (HMAC under SITE_KEY, or SHA-256)."""
        if scheme == "hmac":
            stored, salted = hmac_hash(password, salt), 1
        else:
            stored, salted = sha256_hash(password), 0
        return self.user(login, password=stored, nonce=salt, salted_password=salted, **more)

    def app(self, creator_id: int | None, **columns: Any) -> App:
        row: dict[str, Any] = {
            "type": "web",
            "name": "Photo Sync",
            "description": "Syncs photos",
            "website": "https://photosync.example",
            "client_id": alnum(),
            "client_secret": alnum(),
            "nonce": nonce(64),
            "redirect_uri": "https://photosync.example/cb",
            "activated": 1,
            "grant_password": 0,
            "webhook_active": 0,
            "creator_id": creator_id,
            "created": CREATED,
            "updated": CREATED,
            **columns,
        }
        app_id = self._insert("ApiApplications", row)
        return App(app_id, row["client_id"], row["client_secret"])

    def account(self, user_id: int, app: App, *, revoked: bool = False) -> int:
        return self._insert(
            "ApiAccounts",
            {
                "user_id": user_id,
                "application_id": app.id,
                "revoked": int(revoked),
                "api_version": "2.0.0",
                "created": CREATED,
            },
        )

    def token(self, account_id: int, value: str | None = None, expires: int | None = None) -> str:
        """A token (a 4.x flow token's md5 hex unless ``value`` is given)."""
        value = value if value is not None else hashlib.md5(uuid.uuid4().bytes).hexdigest()  # noqa: S324
        self._insert(
            "ApiOauthTokens",
            {
                "oauth_token": value,
                "account_id": account_id,
                "expires": expires,
                "last_used": CREATED,
                "created": CREATED,
                "updated": CREATED,
            },
        )
        return value

    def code(self, account_id: int, redirect_uri: str, created: datetime = CREATED) -> None:
        self._insert(
            "ApiOauthCodes",
            {
                "code": uuid.uuid4().hex,
                "account_id": account_id,
                "redirect_uri": redirect_uri,
                "expires": 0,
                "created": created,
                "updated": created,
            },
        )


def import_settings(database_url: str, **overrides: str) -> Settings:
    """The settings an import runs with: the test server's, with the site key unless told."""
    overrides.setdefault("phraseanet_site_key", SITE_KEY)
    overrides = {name: value for name, value in overrides.items() if value}
    return Settings.from_env(conftest.server_environ(database_url, **overrides))


async def run_import(
    database_url: str,
    appbox: Appbox,
    *,
    dry_run: bool = False,
    site_key: str = SITE_KEY,
    ttl: int = 90 * 86400,
    batch: int | None = None,
    on_batch: Callable[[str, int], None] | None = None,
) -> Report:
    """Run the import of ``appbox`` into the test's database, as the CLI does."""
    settings = import_settings(database_url, phraseanet_site_key=site_key)
    batches = Batches() if batch is None else Batches(batch, batch, batch, batch)
    options = ImportOptions(
        dry_run=dry_run, legacy_token_ttl=ttl, batches=batches, on_batch=on_batch
    )
    pool = await create_pool(replace(settings, db_statement_timeout=60))
    try:
        return await import_appbox(
            Store(pool), AppboxUrl.parse(appbox.url), settings, options, Progress(None)
        )
    finally:
        await pool.close()
