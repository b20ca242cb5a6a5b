"""``authserver serve`` as a real process: both listeners over HTTP, signals, the embedded mode.

Every child process is stopped in a ``finally`` (SIGINT, then SIGKILL after a bounded wait), and
an embedded PostgreSQL left behind by a failed test is shut down by its process id.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from authserver.serve import run_served
from tests import conftest

START_TIMEOUT = 60.0  # seconds; the embedded mode runs initdb on its first start
STOP_TIMEOUT = 15.0
HTTP_TIMEOUT = 10.0


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def child_environ(settings: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without any AUTHSERVER_* variable, plus ``settings``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AUTHSERVER_")}
    env.update(settings)
    return env


def postgres_pids(pgdata: Path) -> set[int]:
    """Live processes of the PostgreSQL serving ``pgdata``: its postmaster and their children."""
    table: dict[int, tuple[str, int, list[bytes]]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        fields = stat.rpartition(")")[2].split()  # after "pid (comm)": state ppid ...
        table[int(entry.name)] = (fields[0], int(fields[1]), argv)
    needle = str(pgdata).encode()
    masters = {
        pid
        for pid, (state, _, argv) in table.items()
        if state != "Z" and any(needle in arg for arg in argv)
    }
    children = {pid for pid, (state, ppid, _) in table.items() if state != "Z" and ppid in masters}
    return masters | children


def wait_for_no_postgres(pgdata: Path, timeout: float = 5.0) -> set[int]:
    """Poll until no process serves ``pgdata``; what is still there after ``timeout``."""
    deadline = time.monotonic() + timeout
    while (left := postgres_pids(pgdata)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def stop_postgres(pgdata: Path) -> None:
    """Immediate shutdown of a PostgreSQL a failed test left serving ``pgdata``."""
    for pid in postgres_pids(pgdata):
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGQUIT)
    wait_for_no_postgres(pgdata)


class Server:
    """A ``python -m authserver serve`` child; its stdout and stderr go to files."""

    def __init__(self, settings: Mapping[str, str], workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        public, admin = free_port(), free_port()
        self.public_url = f"http://127.0.0.1:{public}"
        self.admin_url = f"http://127.0.0.1:{admin}"
        env = child_environ(
            {
                **settings,
                "AUTHSERVER_PUBLIC_ADDR": f"127.0.0.1:{public}",
                "AUTHSERVER_ADMIN_ADDR": f"127.0.0.1:{admin}",
            }
        )
        self._stdout = workdir / "stdout.log"
        self._stderr = workdir / "stderr.log"
        with self._stdout.open("wb") as out, self._stderr.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "authserver", "serve"],
                env=env,
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )

    def stderr(self) -> str:
        return self._stderr.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Return once /readyz answers 200 on both listeners; fail if the process exits."""
        deadline = time.monotonic() + timeout
        waiting = [self.public_url, self.admin_url]
        while waiting:
            if self.process.poll() is not None:
                pytest.fail(f"serve exited with {self.process.returncode}:\n{self.stderr()}")
            if time.monotonic() > deadline:
                pytest.fail(f"serve not ready after {timeout} s:\n{self.stderr()}")
            try:
                if httpx.get(waiting[0] + "/readyz", timeout=1.0).status_code == 200:
                    waiting.pop(0)
                    continue
            except httpx.TransportError:
                pass
            time.sleep(0.1)

    def stop(self, sig: signal.Signals = signal.SIGINT) -> int | None:
        """Send ``sig`` and wait; the exit status, or None if still running after the wait."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        """Make sure the process is gone: SIGINT, then SIGKILL."""
        if self.process.poll() is None and self.stop() is None:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT)


@contextmanager
def serving(settings: Mapping[str, str], workdir: Path) -> Iterator[Server]:
    """A started server, always stopped on the way out."""
    server = Server(settings, workdir)
    try:
        yield server
    finally:
        server.kill()


def run_serve(settings: Mapping[str, str], workdir: Path) -> subprocess.CompletedProcess[str]:
    """``serve`` run to completion (for configurations that must not start)."""
    workdir.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "authserver", "serve"],
        env=child_environ(settings),
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        check=False,
    )


def assert_no_traceback(text: str) -> None:
    assert "Traceback" not in text


# one server for the HTTP tests


@pytest.fixture(scope="module")
def module_database_url(cluster_url: str, template_database: str) -> Iterator[str]:
    """A fresh migrated database shared by this module's long-running server."""
    url = asyncio.run(conftest.create_database(cluster_url, template_database))
    try:
        yield url
    finally:
        asyncio.run(conftest.drop_database(cluster_url, url))


@pytest.fixture(scope="module")
def live(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A running server, ready on both listeners."""
    with serving(
        conftest.server_environ(module_database_url), tmp_path_factory.mktemp("live")
    ) as server:
        server.wait_ready()
        yield server


@pytest.fixture(scope="module")
def admin_api(live: Server) -> Iterator[httpx.Client]:
    """The live admin listener, authenticated."""
    with httpx.Client(
        base_url=live.admin_url,
        headers={"Authorization": f"Bearer {conftest.ADMIN_TOKEN}"},
        timeout=HTTP_TIMEOUT,
    ) as client:
        yield client


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
@pytest.mark.parametrize("listener", ["public", "admin"])
def test_health_endpoints(live: Server, listener: str, path: str) -> None:
    """Liveness and readiness answer 200 ok on both listeners, without authentication."""
    base = live.public_url if listener == "public" else live.admin_url
    response = httpx.get(base + path, timeout=HTTP_TIMEOUT)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["cache-control"] == "no-store"


def test_admin_without_token_is_401(live: Server) -> None:
    """The admin API answers 401 to a request without a bearer token."""
    response = httpx.get(live.admin_url + "/clients", timeout=HTTP_TIMEOUT)
    assert response.status_code == 401


def test_admin_with_wrong_token_is_401(live: Server) -> None:
    """The admin API answers 401 to a bearer token that is not configured."""
    response = httpx.get(
        live.admin_url + "/clients",
        headers={"Authorization": "Bearer " + "x" * 43},
        timeout=HTTP_TIMEOUT,
    )
    assert response.status_code == 401


def test_public_listener_has_no_admin_api(live: Server) -> None:
    """The admin routes are not served on the public listener, even with an admin token."""
    response = httpx.get(
        live.public_url + "/clients",
        headers={"Authorization": f"Bearer {conftest.ADMIN_TOKEN}"},
        timeout=HTTP_TIMEOUT,
    )
    assert response.status_code == 404


def test_readme_admin_sequence(admin_api: httpx.Client) -> None:
    """The README's curl sequence works over the live admin listener, from user to dev token."""
    user_id = f"u-{uuid.uuid4().hex[:10]}"
    user = admin_api.put(
        f"/users/{user_id}",
        json={
            "login": f"alice-{user_id}",
            "email": f"{user_id}@example.com",
            "display_name": "Alice",
            "password": "correct horse",
        },
    )
    assert user.status_code == 201
    assert (user.json()["user_id"], user.json()["has_password"]) == (user_id, True)

    created = admin_api.post(
        "/clients",
        json={
            "name": "Photo Sync",
            "website": "https://photosync.example",
            "type": "web",
            "redirect_uris": ["https://photosync.example/cb"],
            "owner_id": user_id,
        },
    )
    assert created.status_code == 201
    app = created.json()
    assert app["owner_id"] == user_id
    assert app["client_secret"].startswith("phrcs_")

    listed = admin_api.get("/clients", params={"owner_id": user_id})
    assert listed.status_code == 200
    assert [found["client_id"] for found in listed.json()["clients"]] == [app["client_id"]]

    rotated = admin_api.post(f"/clients/{app['client_id']}/secret")
    assert rotated.status_code == 201
    assert rotated.json()["client_secret"].startswith("phrcs_")
    assert rotated.json()["client_secret"] != app["client_secret"]

    token = admin_api.post(f"/clients/{app['client_id']}/developer-token")
    assert token.status_code == 201
    assert token.json()["client_id"] == app["client_id"]
    assert token.json()["token_type"] == "Bearer"
    assert token.json()["access_token"].startswith("phrat_")


# stopping and failing to start


@pytest.fixture
def fresh(database_url: str, tmp_path: Path) -> Iterator[Server]:
    """A server of this test's own, ready on both listeners."""
    with serving(conftest.server_environ(database_url), tmp_path / "serve") as server:
        server.wait_ready()
        yield server


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_server(fresh: Server, sig: signal.Signals) -> None:
    """SIGINT or SIGTERM makes serve exit with status 0 within 15 s, without a traceback."""
    assert fresh.stop(sig) == 0
    assert_no_traceback(fresh.stderr())


def test_bad_configuration_exits_2(database_url: str, tmp_path: Path) -> None:
    """A malformed setting makes serve exit with status 2 and one line on stderr."""
    done = run_serve(conftest.server_environ(database_url, issuer="ftp://x"), tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("authserver: configuration error: AUTHSERVER_ISSUER")
    assert_no_traceback(done.stderr)


def test_port_in_use_exits_1(database_url: str, tmp_path: Path) -> None:
    """A listener address already in use makes serve exit with status 1, without a traceback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_serve(
            conftest.server_environ(
                database_url,
                public_addr=f"127.0.0.1:{free_port()}",
                admin_addr=f"127.0.0.1:{port}",
            ),
            tmp_path,
        )
    assert done.returncode == 1
    assert "address already in use" in done.stdout  # the JSON log, on stdout
    assert_no_traceback(done.stderr + done.stdout)


# the embedded development mode


@dataclass(frozen=True)
class Embedded:
    data_dir: Path
    server: Server

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    def printed_token(self) -> str | None:
        """The admin token printed on stderr, if it was."""
        lines = self.server.stderr().splitlines()
        for index, line in enumerate(lines):
            if line.startswith("Admin token (shown once"):
                return lines[index + 1].strip()
        return None


@contextmanager
def embedded(data_dir: Path, workdir: Path) -> Iterator[Embedded]:
    """An embedded-mode server on ``data_dir``, ready; stopped with its PostgreSQL after."""
    try:
        with serving({"AUTHSERVER_DATA_DIR": str(data_dir)}, workdir) as server:
            server.wait_ready()
            yield Embedded(data_dir, server)
    finally:
        stop_postgres(data_dir / "pgdata")


def admin_status(server: Server, token: str) -> int:
    response = httpx.get(
        server.admin_url + "/clients",
        headers={"Authorization": f"Bearer {token}"},
        timeout=HTTP_TIMEOUT,
    )
    return response.status_code


@pytest.fixture(scope="module")
def first_start(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Embedded]:
    """A first start in embedded mode, on a new data directory, still running."""
    root = tmp_path_factory.mktemp("embedded")
    with embedded(root / "data", root / "run") as run:
        yield run


@dataclass(frozen=True)
class Restart:
    token: str  # printed by the first start
    first_status: int | None  # exit status of the first start after SIGINT
    postgres_before: set[int]  # the embedded PostgreSQL's processes while the first ran
    postgres_after: set[int]  # ... and those still alive once it had exited
    second: Embedded  # the second start, running


@pytest.fixture(scope="module")
def restart(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Restart]:
    """A first start stopped by SIGINT, then a second start on the same data directory."""
    root = tmp_path_factory.mktemp("restart")
    data_dir = root / "data"
    with embedded(data_dir, root / "run1") as first:
        token = first.printed_token()
        assert token is not None
        before = postgres_pids(first.pgdata)
        status = first.server.stop(signal.SIGINT)
        after = wait_for_no_postgres(first.pgdata)
    with embedded(data_dir, root / "run2") as second:
        yield Restart(token, status, before, after, second)


def test_embedded_prints_development_warning(first_start: Embedded) -> None:
    """Without a database URL, serve warns on stderr that this is a development setup."""
    assert "WARNING: development setup" in first_start.server.stderr()


def test_embedded_prints_admin_token(first_start: Embedded) -> None:
    """The first start prints the generated admin token, the one kept in dev-secrets.json."""
    secrets = (first_start.data_dir / "dev-secrets.json").read_text(encoding="utf-8")
    token = first_start.printed_token()
    assert token is not None
    assert len(token) >= 32
    assert f'"admin_token": "{token}"' in secrets


def test_embedded_secrets_file_is_private(first_start: Embedded) -> None:
    """dev-secrets.json is readable and writable by its owner only (mode 0600)."""
    mode = (first_start.data_dir / "dev-secrets.json").stat().st_mode & 0o777
    assert mode == 0o600


def test_embedded_printed_token_works(first_start: Embedded) -> None:
    """The printed admin token is accepted by the admin API."""
    token = first_start.printed_token()
    assert token is not None
    assert admin_status(first_start.server, token) == 200


def test_embedded_sigint_exits_0(restart: Restart) -> None:
    """SIGINT makes an embedded-mode server exit with status 0 within 15 s."""
    assert restart.first_status == 0


def test_embedded_sigint_stops_postgres(restart: Restart) -> None:
    """Once an embedded-mode server has exited, no PostgreSQL process for its data dir remains."""
    assert restart.postgres_before  # it was found while running, so the check below means it
    assert restart.postgres_after == set()


def test_embedded_restart_does_not_print_token(restart: Restart) -> None:
    """A second start on the same data directory does not print the admin token again."""
    stderr = restart.second.server.stderr()
    assert restart.token not in stderr
    assert restart.second.printed_token() is None
    assert "Admin token: see" in stderr


def test_embedded_restart_reuses_token(restart: Restart) -> None:
    """A second start keeps the admin token printed by the first."""
    assert admin_status(restart.second.server, restart.token) == 200


def test_servers_run_on_uvloop() -> None:
    """run_served, which runs both listeners and the bench floor, runs them on uvloop."""

    async def loop_module() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert run_served(loop_module()).startswith("uvloop")
