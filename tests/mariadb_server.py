"""A throwaway MariaDB server (Debian's mariadb-server) for the Phraseanet import's tests and
benchmark: made from an empty data directory, on 127.0.0.1 and a free port, and stopped (its
files deleted) when the block ends.

As root (CI), the server runs as the ``mysql`` user, which must be able to traverse every parent
of the data directory; as anyone else it runs as that user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pymysql

from tests.live_server import free_port

SCHEMA = Path(__file__).parent / "phraseanet_appbox_schema.sql"
# A read-only account with a password, as an operator would give the import.
READER = "reader"
READER_PASSWORD = "Rd-0nly-Pa55"
START_TIMEOUT = 60.0


@dataclass(frozen=True)
class MariaDB:
    host: str
    port: int
    user: str  # root, with an empty password

    def connect(self, database: str | None = None) -> pymysql.Connection[pymysql.cursors.Cursor]:
        return pymysql.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password="",
            database=database,
            charset="utf8mb4",
            autocommit=True,
            client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS,
        )

    def url(self, database: str) -> str:
        return f"mysql://{self.user}:@{self.host}:{self.port}/{database}"

    def reader_url(self, database: str, password: str = READER_PASSWORD) -> str:
        """The URL of the read-only account (with another password: one MySQL refuses)."""
        return f"mysql://{READER}:{password}@{self.host}:{self.port}/{database}"

    def create_appbox(self, database: str) -> None:
        """A new database with Phraseanet's appbox tables, empty."""
        with self.connect() as conn, conn.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8")
            cursor.execute(f"USE `{database}`")
            cursor.execute(SCHEMA.read_text(encoding="utf-8"))
            while cursor.nextset():
                pass

    def drop(self, database: str) -> None:
        with self.connect() as conn, conn.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{database}`")


def installed() -> bool:
    return shutil.which("mariadbd", path=_PATH) is not None


_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])


@contextmanager
def mariadb_server() -> Iterator[MariaDB]:
    """Start mariadbd from a new data directory; stop it and delete its files on the way out."""
    as_root = os.geteuid() == 0
    parent = Path(tempfile.mkdtemp(prefix="authserver-test-mariadb-"))
    parent.chmod(0o755)  # mkdtemp's 0700 would keep the mysql user out
    data = parent / "data"
    user = ["--user=mysql"] if as_root else []
    process: subprocess.Popen[bytes] | None = None
    log = (parent / "server.log").open("wb")
    try:
        subprocess.run(
            [
                _which("mariadb-install-db"),
                "--no-defaults",
                *user,
                f"--datadir={data}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            check=True,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        port = free_port()
        process = subprocess.Popen(
            [
                _which("mariadbd"),
                "--no-defaults",
                *user,
                f"--datadir={data}",
                f"--socket={data}/mariadb.sock",  # in the directory mysql owns
                f"--port={port}",
                "--bind-address=127.0.0.1",
                "--innodb-flush-log-at-trx-commit=0",  # throwaway data: no fsync per commit
                "--innodb-buffer-pool-size=256M",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        server = MariaDB("127.0.0.1", port, "root")
        _wait(server, process, parent / "server.log")
        with server.connect() as conn, conn.cursor() as cursor:
            for host in ("localhost", "127.0.0.1"):
                cursor.execute(f"CREATE USER '{READER}'@'{host}' IDENTIFIED BY '{READER_PASSWORD}'")
                cursor.execute(f"GRANT SELECT ON *.* TO '{READER}'@'{host}'")
        yield server
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)
        log.close()
        shutil.rmtree(parent, ignore_errors=True)


def _which(program: str) -> str:
    found = shutil.which(program, path=_PATH)
    if found is None:
        raise FileNotFoundError(f"{program} is not installed (apt-get install mariadb-server)")
    return found


def _wait(server: MariaDB, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mariadbd exited early:\n{log.read_text(errors='replace')}")
        try:
            server.connect().close()
        except pymysql.err.OperationalError:
            time.sleep(0.2)
        else:
            return
    raise TimeoutError(f"mariadbd did not answer within {START_TIMEOUT} s")
