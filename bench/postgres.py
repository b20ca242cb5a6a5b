"""A throwaway PostgreSQL database for one bench run.

pgserver's embedded cluster in a temporary directory, or, when AUTHSERVER_BENCH_DATABASE_URL
names a server, a new database on it. Either way it is gone when the run ends.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

import asyncpg

URL_VARIABLE = "AUTHSERVER_BENCH_DATABASE_URL"


@dataclass(frozen=True)
class Database:
    url: str
    embedded: bool  # our own cluster: we may change its settings and need not ask
    data_dir: Path | None = None  # our own cluster's, where its postmaster.pid is


def _with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` (socket-directory URLs keep their query)."""
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


@asynccontextmanager
async def throwaway_database() -> AsyncIterator[Database]:
    given = os.environ.get(URL_VARIABLE, "").strip()
    if given:
        async with _fresh_database(given) as url:
            yield Database(url, embedded=False)
        return
    # pgserver warns about XDG_RUNTIME_DIR and logs each pg_ctl call; neither helps here.
    warnings.filterwarnings("ignore", module="platformdirs")
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    import pgserver

    workdir = Path(tempfile.mkdtemp(prefix="authserver-bench-pg-"))
    server: Any = None
    try:
        server = pgserver.get_server(  # type: ignore[attr-defined]
            workdir / "data", cleanup_mode="delete"
        )
        async with _fresh_database(server.get_uri()) as url:
            yield Database(url, embedded=True, data_dir=workdir / "data")
    finally:
        if server is not None:
            server.cleanup()  # stops the cluster
        shutil.rmtree(workdir, ignore_errors=True)  # up to a few GB at 10^7 rows


def another_database(db: Database) -> AbstractAsyncContextManager[str]:
    """A second throwaway database on the same cluster (a peer's own tables); its URL."""
    return _fresh_database(db.url)


def libpq_environ(url: str) -> dict[str, str]:
    """libpq's PG* variables for a ``postgresql://`` URL (a socket directory given as the
    ``host`` query parameter, as pgserver's URLs do): psycopg and node's pg both read them."""
    parts = urlsplit(url)
    host = parse_qs(parts.query).get("host", [parts.hostname or ""])[0]
    found = {
        "PGHOST": host,
        "PGPORT": str(parts.port or 5432),
        "PGUSER": unquote(parts.username or ""),
        "PGPASSWORD": unquote(parts.password or ""),
        "PGDATABASE": parts.path.lstrip("/"),
    }
    return {key: value for key, value in found.items() if value}


@asynccontextmanager
async def _fresh_database(cluster_url: str) -> AsyncIterator[str]:
    name = f"authserver_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(cluster_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield _with_database(cluster_url, name)
    finally:
        admin = await asyncpg.connect(cluster_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
