"""Reading a Phraseanet appbox: the URL, the connection and the rows the import needs.

Columns are read by name (an upgraded appbox orders them otherwise than a fresh one). Reads are
synchronous (PyMySQL): the importer runs them in a worker thread. Any MySQL failure becomes an
``ImportFailed`` naming the server without its password and the MySQL error number: neither the
URL nor the driver's message (which may quote what it was given) reaches a log or the terminal.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

from authserver.errors import ImportFailed

_FORM = "mysql://USER:PASSWORD@HOST:PORT/DATABASE"


@dataclass(frozen=True)
class AppboxUrl:
    user: str
    password: str = field(repr=False)
    host: str
    port: int
    database: str

    @classmethod
    def parse(cls, raw: str) -> AppboxUrl:
        """``mysql://USER:PASSWORD@HOST:PORT/DATABASE``; errors never quote the value."""
        try:
            parts = urlsplit(raw)
            port = parts.port or 3306
        except ValueError:
            raise ImportFailed(f"APPBOX_URL must be {_FORM}") from None
        database = unquote(parts.path.lstrip("/"))
        if parts.scheme != "mysql" or not parts.hostname or not parts.username or not database:
            raise ImportFailed(f"APPBOX_URL must be {_FORM}")
        if parts.query or parts.fragment or "/" in database:
            raise ImportFailed(f"APPBOX_URL must be {_FORM}, without anything after the database")
        return cls(
            user=unquote(parts.username),
            password=unquote(parts.password or ""),
            host=parts.hostname,
            port=port,
            database=database,
        )

    def __str__(self) -> str:
        """The URL without its password: what logs and the report may show."""
        return f"mysql://{self.user}@{self.host}:{self.port}/{self.database}"


class SourceUser(NamedTuple):
    id: int
    login: str
    email: str | None
    password: str | None
    nonce: str | None
    salted_password: bool
    first_name: str
    last_name: str
    guest: bool
    mail_locked: bool
    deleted: bool
    model_of: int | None
    created: datetime
    updated: datetime


class SourceApp(NamedTuple):
    id: int
    creator_id: int | None
    type: str
    name: str
    description: str
    website: str
    client_id: str
    client_secret: str
    redirect_uri: str
    activated: bool
    grant_password: bool
    created: datetime
    updated: datetime


class SourceAccount(NamedTuple):
    id: int
    user_id: int
    application_id: int
    revoked: bool
    created: datetime


class SourceToken(NamedTuple):
    token: str
    account_id: int
    expires: int | None  # Unix time; NULL for developer tokens and every 3.x token
    created: datetime


_USERS = (
    "SELECT id, login, email, password, nonce, salted_password, first_name, last_name, guest,"
    " mail_locked, deleted, model_of, created, updated FROM Users ORDER BY id"
)
_APPS = (
    "SELECT id, creator_id, type, name, description, website, client_id, client_secret,"
    " redirect_uri, activated, grant_password, created, updated"
    " FROM ApiApplications ORDER BY id"
)
_ACCOUNTS = (
    "SELECT id, user_id, application_id, revoked, created FROM ApiAccounts"
    " ORDER BY user_id, application_id, id"
)
# D15: the URIs clients actually used, exactly as sent (utf8_bin: the table's collation would
# fold case and trailing spaces together), in the order they were first used.
_CODE_REDIRECTS = (
    "SELECT a.application_id, c.redirect_uri COLLATE utf8_bin AS uri, MIN(c.created) AS first"
    " FROM ApiOauthCodes c JOIN ApiAccounts a ON a.id = c.account_id"
    " GROUP BY a.application_id, c.redirect_uri COLLATE utf8_bin"
    " ORDER BY a.application_id, first, uri"
)
_TOKENS = "SELECT oauth_token, account_id, expires, created FROM ApiOauthTokens"
COUNTED = ("Users", "ApiApplications", "ApiAccounts", "ApiOauthTokens", "ApiOauthCodes")


class Appbox:
    """An open connection to the appbox, read-only in what it does."""

    def __init__(self, url: AppboxUrl) -> None:
        import pymysql  # the optional extra authserver[phraseanet]

        self._url = url
        self._pymysql = pymysql
        self._conn = self._guard(
            lambda: pymysql.connect(
                host=url.host,
                port=url.port,
                user=url.user,
                password=url.password,
                database=url.database,
                charset="utf8mb4",
                connect_timeout=10,
                read_timeout=600,
                autocommit=True,
            )
        )
        # Rows are streamed while PostgreSQL is written: give the writer time between reads.
        self._execute("SET SESSION net_write_timeout = 600, time_zone = '+00:00'")

    def close(self) -> None:
        self._guard(self._conn.close)

    def count(self, table: str) -> int:
        if table not in COUNTED:
            raise ValueError(table)
        rows = self._execute(f"SELECT COUNT(*) FROM {table}")  # noqa: S608 -- a fixed name
        return int(rows[0][0])

    def users(self) -> list[SourceUser]:
        return [
            SourceUser(
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                bool(row[5]),
                row[6],
                row[7],
                bool(row[8]),
                bool(row[9]),
                bool(row[10]),
                row[11],
                row[12],
                row[13],
            )
            for row in self._execute(_USERS)
        ]

    def applications(self) -> list[SourceApp]:
        return [
            SourceApp(
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                row[5],
                row[6],
                row[7],
                row[8],
                bool(row[9]),
                bool(row[10]),
                row[11],
                row[12],
            )
            for row in self._execute(_APPS)
        ]

    def accounts(self) -> list[SourceAccount]:
        return [
            SourceAccount(row[0], row[1], row[2], bool(row[3]), row[4])
            for row in self._execute(_ACCOUNTS)
        ]

    def code_redirects(self) -> dict[int, list[str]]:
        """Each application's distinct redirect URIs from its codes, first used first."""
        found: dict[int, list[str]] = {}
        for application_id, uri, _first in self._execute(_CODE_REDIRECTS):
            text = uri.decode() if isinstance(uri, bytes) else uri
            found.setdefault(application_id, []).append(text)
        return found

    def tokens(
        self, *, after: str | None = None, through: str | None = None, batch: int = 10_000
    ) -> Generator[list[SourceToken], None, None]:
        """Tokens in key order, streamed in batches: those after ``after`` and up to
        ``through`` (the database compares, with the column's own collation)."""
        conditions, args = [], []
        if after is not None:
            conditions.append("oauth_token > %s")
            args.append(after)
        if through is not None:
            conditions.append("oauth_token <= %s")
            args.append(through)
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        sql = f"{_TOKENS}{where} ORDER BY oauth_token"
        cursor = self._guard(lambda: self._conn.cursor(self._pymysql.cursors.SSCursor))
        try:
            self._guard(lambda: cursor.execute(sql, args))
            while True:
                rows = self._guard(lambda: cursor.fetchmany(batch))
                if not rows:
                    return
                yield [SourceToken(*row) for row in rows]
        finally:
            self._guard(cursor.close)

    def _execute(self, sql: str) -> tuple[tuple[Any, ...], ...]:
        def run() -> tuple[tuple[Any, ...], ...]:
            with self._conn.cursor() as cursor:
                cursor.execute(sql)
                return tuple(cursor.fetchall())

        rows: tuple[tuple[Any, ...], ...] = self._guard(run)
        return rows

    def _guard(self, call: Any) -> Any:
        try:
            return call()
        except self._pymysql.MySQLError as exc:
            code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else "unknown"
            raise ImportFailed(
                f"cannot read the appbox at {self._url}: MySQL error {code}"
            ) from None
