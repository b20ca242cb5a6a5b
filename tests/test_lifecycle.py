"""The server's life around its database and its signals, as a real process over real HTTP.

PostgreSQL going away and coming back under a running server (a cluster of this test's own,
stopped and started with pg_ctl), SIGTERM in the middle of a load, and a start-up while the
database cannot be reached. Every process and cluster is stopped in a ``finally``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from authserver.security.tokens import TokenKind
from tests.conftest import ADMIN_TOKEN, server_environ
from tests.live_server import LiveServer, free_port, live_server
from tests.oauth_support import CODEC
from tests.token_support import web_auth

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR unset in CI
    import pgserver
    from pgserver.utils import PostmasterInfo

get_server: Any = pgserver.get_server  # type: ignore[attr-defined]
PG_BIN = Path(pgserver.__file__).parent / "pginstall" / "bin"
PG_CTL_TIMEOUT = 60.0
REQUEST_BOUND = 12.0  # seconds: while PostgreSQL is down, an answer must come before this
RECOVERY_BOUND = 5.0  # seconds after PostgreSQL is back until the server answers normally
SHUTDOWN_GRACE = 10  # seconds the server gets to drain after SIGTERM
LOAD_WORKERS = 16
LOAD_BEFORE_SIGNAL = 1.5  # seconds of load before SIGTERM
QUEUED_SLACK = 0.2  # seconds: how late after the listener closed a queued connection is reset

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


# a PostgreSQL of this test's own, to stop and start


@dataclass
class OwnCluster:
    """A pgserver cluster this test may stop and start again with pg_ctl."""

    server: Any  # pgserver.PostgresServer
    uri: str
    pgdata: Path
    socket_dir: Path

    def _pg_ctl(self, *args: str) -> None:
        # pgserver runs PostgreSQL as its own system user when we are root; so does pg_ctl.
        with tempfile.TemporaryFile() as out:  # not a pipe: the postmaster would inherit it
            done = subprocess.run(
                [str(PG_BIN / "pg_ctl"), "-D", str(self.pgdata), *args],
                user=self.server.system_user,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=PG_CTL_TIMEOUT,
                check=False,
            )
            if done.returncode != 0:
                out.seek(0)
                raise RuntimeError(f"pg_ctl {' '.join(args)} failed: {out.read().decode()}")

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("-w", "-m", mode, "stop")

    def start(self) -> None:
        """Start it again the way pgserver did: no TCP, the same socket directory and log."""
        self._pg_ctl(
            "-w",
            "-o",
            '-h ""',
            "-o",
            f"-k {self.socket_dir}",
            "-l",
            str(self.pgdata / "log"),
            "start",
        )
        # pgserver remembers the postmaster it started; its cleanup must stop this one instead.
        self.server._postmaster_info = PostmasterInfo.read_from_pgdata(self.pgdata)


@pytest.fixture
def own_cluster() -> Iterator[OwnCluster]:
    """A fresh PostgreSQL cluster, always stopped and deleted afterwards."""
    parent = Path(tempfile.mkdtemp(prefix="authserver-outage-pg-"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server: Any = get_server(parent / "data", cleanup_mode="delete")
        try:
            info = server.get_postmaster_info()
            assert info.socket_dir is not None
            cluster = OwnCluster(server, server.get_uri(), server.pgdata, info.socket_dir)
            yield cluster
        finally:
            server.cleanup()  # stops the postmaster if it runs, deletes the data directory
    finally:
        shutil.rmtree(parent, ignore_errors=True)


# helpers


async def provision(http: httpx.AsyncClient, server: LiveServer) -> tuple[dict[str, Any], str]:
    """Through the admin API: an introspecting client; and a token it got by client credentials."""
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    owner = await http.put(
        f"{server.admin_url}/users/owner-1", json={"login": "olivia"}, headers=admin
    )
    assert owner.status_code == 201, owner.text
    created = await http.post(
        f"{server.admin_url}/clients",
        headers=admin,
        json={
            "name": "Phraseanet API",
            "website": "https://phraseanet.example",
            "type": "web",
            "redirect_uris": ["https://phraseanet.example/cb"],
            "owner_id": "owner-1",
            "introspection": True,
        },
    )
    assert created.status_code == 201, created.text
    client: dict[str, Any] = created.json()
    issued = await http.post(
        f"{server.public_url}/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers=web_auth(client),
    )
    assert issued.status_code == 200, issued.text
    return client, str(issued.json()["access_token"])


def introspection(
    http: httpx.AsyncClient, server: LiveServer, client: dict[str, Any], token: str
) -> Callable[[], Awaitable[httpx.Response]]:
    def ask() -> Awaitable[httpx.Response]:
        return http.post(
            f"{server.public_url}/oauth2/introspect",
            data={"token": token},
            headers=web_auth(client),
        )

    return ask


async def timed(request: Awaitable[httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await request
    return response, time.monotonic() - started


async def poll(check: Callable[[], Awaitable[bool]], within: float) -> float | None:
    """Seconds until ``check()`` first holds, or None if it did not within ``within``."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        try:
            if await check():
                return time.monotonic() - started
        except (httpx.TransportError, TimeoutError):
            pass
        await asyncio.sleep(0.05)
    return None


def access_statuses(output: str) -> Counter[int]:
    """Statuses of the access-log lines in a server's output."""
    statuses: Counter[int] = Counter()
    for line in output.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("logger") == "authserver.access":
                statuses[int(record["status"])] += 1
    return statuses


def error_records(output: str) -> list[str]:
    """Messages of the log records at ERROR or above (an unexpected exception is one)."""
    return [
        record["message"]
        for record in (json.loads(line) for line in output.splitlines() if line.startswith("{"))
        if record["level"] in ("ERROR", "CRITICAL")
    ]


# PostgreSQL goes away and comes back


@pytest.mark.slow
async def test_database_outage_answers_503_then_recovers(
    own_cluster: OwnCluster, tmp_path: Path
) -> None:
    """PostgreSQL stopped: /readyz 503 and requests 503 quickly; back: normal within 5 s."""
    log = tmp_path / "server.log"
    async with (
        live_server(own_cluster.uri, log, janitor_interval="0") as server,
        httpx.AsyncClient(timeout=REQUEST_BOUND) as http,
    ):
        assert server.process is not None
        client, token = await provision(http, server)
        introspect = introspection(http, server, client, token)
        assert (await http.get(f"{server.public_url}/readyz")).status_code == 200
        # Meanwhile a resource server keeps asking, through the stop and the start.
        seen: list[tuple[int, float]] = []
        done = asyncio.Event()
        asker = asyncio.create_task(keep_asking(introspect, seen, done))
        try:
            await outage(server, own_cluster, http, client, introspect)
        finally:
            done.set()
            await asyncio.wait_for(asker, REQUEST_BOUND + 1.0)
        assert server.process.returncode is None  # the same process throughout
    assert {status for status, _ in seen} == {200, 503}
    assert max(seconds for _, seconds in seen) < REQUEST_BOUND
    statuses = access_statuses(log.read_text())
    assert statuses[500] == 0
    assert error_records(log.read_text()) == []


async def keep_asking(
    ask: Callable[[], Awaitable[httpx.Response]], seen: list[tuple[int, float]], done: asyncio.Event
) -> None:
    """Introspect over and over until ``done``, noting each status and how long it took."""
    while not done.is_set():
        response, seconds = await timed(ask())
        seen.append((response.status_code, seconds))
        await asyncio.sleep(0.01)


async def outage(
    server: LiveServer,
    own_cluster: OwnCluster,
    http: httpx.AsyncClient,
    client: dict[str, Any],
    introspect: Callable[[], Awaitable[httpx.Response]],
) -> None:
    """Stop PostgreSQL, check the 503s, start it again, check the recovery."""
    admin_list = f"{server.admin_url}/clients"
    admin_headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    await asyncio.to_thread(own_cluster.stop)

    async def unready() -> bool:
        return (await http.get(f"{server.public_url}/readyz")).status_code == 503

    to_unready = await poll(unready, REQUEST_BOUND)
    assert to_unready is not None, "readyz still 200 with PostgreSQL stopped"
    assert (await http.get(f"{server.admin_url}/readyz")).status_code == 503
    requests: list[Callable[[], Awaitable[httpx.Response]]] = [
        introspect,
        lambda: http.post(
            f"{server.public_url}/oauth2/token",
            data={"grant_type": "client_credentials"},
            headers=web_auth(client),
        ),
        lambda: http.get(admin_list, headers=admin_headers),
    ]
    slowest = 0.0
    for request in requests:
        response, seconds = await timed(request())
        slowest = max(slowest, seconds)
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "1"
        assert response.json()["error"] == "temporarily_unavailable"
        assert seconds < REQUEST_BOUND

    await asyncio.to_thread(own_cluster.start)

    async def answering() -> bool:
        ready = await http.get(f"{server.public_url}/readyz", timeout=2.0)
        answer = await asyncio.wait_for(introspect(), 2.0)
        return (
            ready.status_code == 200
            and answer.status_code == 200
            and answer.json()["active"] is True
        )

    recovered = await poll(answering, RECOVERY_BOUND)
    assert recovered is not None, "not answering normally 5 s after PostgreSQL came back"
    listed = await http.get(admin_list, headers=admin_headers)
    assert listed.status_code == 200
    print(
        f"\nreadyz 503 {to_unready:.2f} s after the stop; 503 answers within {slowest:.3f} s; "
        f"normal again {recovered:.2f} s after the start"
    )


# SIGTERM under load


@dataclass
class Outcome:
    """One request of the load: when it ran and how it ended."""

    started: float
    ended: float
    kind: str  # "ok", "status", "cut" (failed after the headers), "refused", "reset"
    detail: str = ""


@dataclass
class Load:
    """Concurrent clients alternating introspection and client-credentials token requests."""

    server: LiveServer
    client: dict[str, Any]
    token: str
    outcomes: list[Outcome] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def worker(self, index: int) -> None:
        # A new connection per request: a rolling restart sends new connections elsewhere, and
        # each request is then either refused, or accepted and answered.
        limits = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(timeout=SHUTDOWN_GRACE + 5.0, limits=limits) as http:
            turn = index
            while not self.stop.is_set():
                turn += 1
                if turn % 2:
                    url, form = "/oauth2/introspect", {"token": self.token}
                else:
                    url, form = "/oauth2/token", {"grant_type": "client_credentials"}
                await self.one(http, self.server.public_url + url, form)

    async def one(self, http: httpx.AsyncClient, url: str, form: dict[str, str]) -> None:
        started = time.monotonic()
        try:
            async with http.stream("POST", url, data=form, headers=web_auth(self.client)) as r:
                try:
                    await r.aread()
                except httpx.HTTPError as exc:
                    self.record(started, "cut", repr(exc))
                    return
                kind = "ok" if r.status_code == 200 else "status"
                self.record(started, kind, f"{r.status_code} {r.text[:200]}")
        except httpx.ConnectError as exc:
            self.record(started, "refused", repr(exc))
            await asyncio.sleep(0.01)  # the listener is gone; do not spin
        except httpx.HTTPError as exc:  # the connection was closed before any response
            self.record(started, "reset", repr(exc))

    def record(self, started: float, kind: str, detail: str) -> None:
        self.outcomes.append(Outcome(started, time.monotonic(), kind, detail))


@pytest.mark.slow
async def test_sigterm_under_load_drops_no_request(
    database_url: str, introspector: dict[str, Any], tmp_path: Path
) -> None:
    """SIGTERM during a load: every accepted request answered 200; exit 0 within the grace."""
    log = tmp_path / "server.log"
    async with live_server(
        database_url, log, janitor_interval="0", shutdown_grace=str(SHUTDOWN_GRACE)
    ) as server:
        assert server.process is not None
        async with httpx.AsyncClient(base_url=server.public_url, timeout=10.0) as http:
            issued = await http.post(
                "/oauth2/token",
                data={"grant_type": "client_credentials"},
                headers=web_auth(introspector),
            )
        assert issued.status_code == 200, issued.text
        load = Load(server, introspector, issued.json()["access_token"])
        workers = [asyncio.create_task(load.worker(index)) for index in range(LOAD_WORKERS)]
        try:
            await asyncio.sleep(LOAD_BEFORE_SIGNAL)
            signalled = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            status = await asyncio.wait_for(server.process.wait(), SHUTDOWN_GRACE + 5.0)
            exited = time.monotonic() - signalled
            await asyncio.sleep(0.2)  # a few requests against the closed port
        finally:
            load.stop.set()
            await asyncio.wait_for(asyncio.gather(*workers), SHUTDOWN_GRACE + 10.0)

    kinds = Counter(outcome.kind for outcome in load.outcomes)
    in_flight = [o for o in load.outcomes if o.started < signalled < o.ended]
    closed = min(o.started for o in load.outcomes if o.kind == "refused")
    # A connection still queued in the kernel when the listener closes is reset by the kernel:
    # never accepted, it is a refusal by another name, and can only happen at that moment.
    queued = [o for o in load.outcomes if o.kind == "reset" and o.ended <= closed + QUEUED_SLACK]
    summary = (
        f"{dict(kinds)}; {len(in_flight)} in flight at SIGTERM; listener closed "
        f"{closed - signalled:.2f} s and process exited {exited:.2f} s after the signal"
    )
    print("\n" + summary)
    assert status == 0
    assert exited < SHUTDOWN_GRACE
    assert [o.detail for o in load.outcomes if o.kind in ("status", "cut")] == []
    assert [o.detail for o in load.outcomes if o.kind == "reset" and o not in queued] == []
    assert all(o.started >= signalled for o in load.outcomes if o.kind == "refused"), summary
    assert kinds["ok"] > LOAD_WORKERS
    assert len(in_flight) >= LOAD_WORKERS // 2, summary
    assert all(o.kind == "ok" for o in in_flight), summary
    assert error_records(log.read_text()) == []


async def raw_request(port: int, request: bytes, reader_writer: Streams) -> bytes:
    """Send ``request`` on an open connection and read the answer until the server closes."""
    reader, writer = reader_writer
    writer.write(request)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), 5.0)
    finally:
        writer.close()


async def wait_refused(port: int, within: float) -> bool:
    """Whether connecting to ``port`` is refused (the listener closed) within ``within`` s."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except ConnectionRefusedError:
            return True
        writer.close()
        await asyncio.sleep(0.01)
    return False


async def test_sigterm_serves_connection_accepted_before(
    database_url: str, introspector: dict[str, Any], tmp_path: Path
) -> None:
    """A connection accepted before SIGTERM whose request comes after the close is answered."""
    form = f"token={CODEC.mint(TokenKind.ACCESS)}".encode()
    headers = {
        "Host": "127.0.0.1",
        "Content-Type": "application/x-www-form-urlencoded",
        "Content-Length": str(len(form)),
        "Connection": "close",
        **web_auth(introspector),
    }
    request = b"POST /oauth2/introspect HTTP/1.1\r\n"
    request += b"".join(f"{name}: {value}\r\n".encode() for name, value in headers.items())
    request += b"\r\n" + form
    async with live_server(database_url, tmp_path / "server.log", janitor_interval="0") as server:
        assert server.process is not None
        port = int(server.public_url.rsplit(":", 1)[1])
        streams = await asyncio.open_connection("127.0.0.1", port)
        try:
            await asyncio.sleep(0.3)  # the idle server has accepted it
            server.process.send_signal(signal.SIGTERM)
            assert await wait_refused(port, 3.0), "the listener did not close after SIGTERM"
            answer = await raw_request(port, request, streams)
        finally:
            streams[1].close()
        status = await asyncio.wait_for(server.process.wait(), SHUTDOWN_GRACE + 5.0)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert b'"active":false' in answer.replace(b" ", b"")
    assert status == 0


# start-up without a database


async def test_startup_without_database_exits_1(tmp_path: Path) -> None:
    """With the database unreachable, serve gives up after STARTUP_TIMEOUT: status 1, one line."""
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("AUTHSERVER_")},
        **server_environ(
            f"postgresql://authserver@127.0.0.1:{free_port()}/authserver",
            startup_timeout="2",
            public_addr=f"127.0.0.1:{free_port()}",
            admin_addr=f"127.0.0.1:{free_port()}",
        ),
    }
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "authserver",
        "serve",
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), 30.0)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    seconds = time.monotonic() - started
    stderr = err.decode()
    assert process.returncode == 1
    assert stderr.startswith("authserver: cannot reach the database"), stderr
    assert stderr.count("\n") == 1
    assert "Traceback" not in stderr + out.decode()
    assert 1.0 <= seconds < 10.0
