"""A real server process against hostile or unlucky peers: slow and silent clients, oversized
heads, too many connections (checklist R-19, SC6), a frozen database (R-09), and the drain
after SIGTERM (R-17)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.live_server import LiveServer, live_server
from tests.test_lifecycle import OwnCluster, own_cluster, provision  # noqa: F401 (a fixture)

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]
HEADER_TIMEOUT = 2  # seconds, as the servers below are configured


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


async def connect(port: int) -> Streams:
    return await asyncio.open_connection("127.0.0.1", port)


async def closed_by_server(reader: asyncio.StreamReader, within: float) -> bytes | None:
    """What the server sent before it closed the connection, or None if it stayed open."""
    try:
        return await asyncio.wait_for(reader.read(), within)
    except TimeoutError:
        return None
    except ConnectionError:
        return b""


@asynccontextmanager
async def limited_server(
    database_url: str, tmp_path: Path, **overrides: str
) -> AsyncIterator[LiveServer]:
    settings = {
        "header_timeout": str(HEADER_TIMEOUT),
        "body_timeout": str(HEADER_TIMEOUT),
        "janitor_interval": "0",
        **overrides,
    }
    async with live_server(database_url, tmp_path / "server.log", **settings) as server:
        yield server


# SC6: slow and silent clients


@pytest.mark.slow
async def test_slow_clients_are_cut_off_and_others_served(
    database_url: str, tmp_path: Path
) -> None:
    """1,000 connections that send nothing, a header byte at a time, or half a body do not
    stop others from being served, and are all closed once the header or body timeout has
    passed."""
    async with limited_server(database_url, tmp_path) as server:
        port = port_of(server.public_url)
        slow: list[Streams] = []
        for index in range(1000):
            reader, writer = await connect(port)
            if index % 3 == 1:
                writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            elif index % 3 == 2:
                writer.write(
                    b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Type: application/x-www-form-urlencoded\r\n"
                    b"Content-Length: 100\r\n\r\ngrant_type="
                )
            slow.append((reader, writer))
        async with httpx.AsyncClient(timeout=5) as http:
            started = time.monotonic()
            served = await http.get(f"{server.public_url}/healthz")
            assert served.status_code == 200
            assert time.monotonic() - started < 1.0
        await asyncio.sleep(HEADER_TIMEOUT + 0.5)
        outcomes = await asyncio.gather(
            *(closed_by_server(reader, within=2.0) for reader, _ in slow)
        )
        for _, writer in slow:
            writer.close()
    assert all(outcome is not None for outcome in outcomes)
    assert any(outcome and outcome.startswith(b"HTTP/1.1 408") for outcome in outcomes)


@pytest.mark.slow
async def test_connections_over_the_cap_are_refused(database_url: str, tmp_path: Path) -> None:
    """Past AUTHSERVER_MAX_CONNECTIONS a listener answers 503 and closes, at once."""
    async with limited_server(database_url, tmp_path, max_connections="20") as server:
        port = port_of(server.public_url)
        held = [await connect(port) for _ in range(20)]
        await asyncio.sleep(0.2)
        reader, writer = await connect(port)
        refused = await closed_by_server(reader, within=2.0)
        writer.close()
        for _, held_writer in held:
            held_writer.close()
    assert refused is not None
    assert refused.startswith(b"HTTP/1.1 503")


@pytest.mark.slow
async def test_connection_answered_before_its_body_ends_still_idles_out(
    database_url: str, tmp_path: Path
) -> None:
    """A request answered before its body is all in (a path that does not exist), whose body
    then ends: the connection, idle from there, is closed after uvicorn's 5 s keep-alive."""
    async with limited_server(database_url, tmp_path) as server:
        reader, writer = await connect(port_of(server.public_url))
        try:
            writer.write(b"POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello")
            await writer.drain()
            answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
            await asyncio.sleep(0.2)
            writer.write(b"world")
            await writer.drain()
            closed = await closed_by_server(reader, within=8.0)
        finally:
            writer.close()
    assert answer.startswith(b"HTTP/1.1 404 ")
    assert closed is not None


HALF_A_BODY = (
    b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\n"
    b"Content-Type: application/x-www-form-urlencoded\r\n"
    b"Content-Length: 100\r\n\r\ngrant_type="
)


async def test_body_timeout_shorter_than_the_head_timeout_holds(
    database_url: str, tmp_path: Path
) -> None:
    """A body timeout shorter than the head timeout cuts a slow body off at its own time,
    not at the head timeout's."""
    async with limited_server(
        database_url, tmp_path, header_timeout="10", body_timeout="1"
    ) as server:
        started = time.monotonic()
        closed = await head_answer(port_of(server.public_url), HALF_A_BODY)
        took = time.monotonic() - started
    assert closed.startswith(b"HTTP/1.1 408")  # b"" when the connection was not closed
    assert 0.8 < took < 3.0


async def test_head_timeout_counts_from_the_next_requests_first_byte(
    database_url: str, tmp_path: Path
) -> None:
    """On a kept-alive connection the head timeout of a next request runs from its first
    byte: a head begun 1.5 s after the connection opened is cut off 2 s later, not sooner,
    and not never."""
    async with limited_server(database_url, tmp_path) as server:
        reader, writer = await connect(port_of(server.public_url))
        try:
            started = time.monotonic()
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
            await asyncio.sleep(1.5 - (time.monotonic() - started))
            writer.write(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
            await writer.drain()
            rest = await closed_by_server(reader, within=6.0)
            took = time.monotonic() - started
        finally:
            writer.close()
    assert rest is not None
    assert b"HTTP/1.1 408" in rest
    assert 3.3 < took < 5.0


# oversized heads


async def head_answer(port: int, head: bytes) -> bytes:
    """What the server answered to ``head`` before it closed the connection (b"" if it kept
    it open for 5 s)."""
    reader, writer = await connect(port)
    try:
        writer.write(head)
        # The server may close while we are still sending: its answer is read below.
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        return await closed_by_server(reader, within=5.0) or b""
    finally:
        writer.close()


@pytest.mark.slow
@pytest.mark.parametrize(
    "head",
    [
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
        + b"".join(b"X-H%d: v\r\n" % i for i in range(200))
        + b"\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Huge: " + b"a" * 8_000_000 + b"\r\n\r\n",
    ],
    ids=["200 headers", "100 KB header", "8 MB header"],
)
async def test_oversized_heads_get_431(database_url: str, tmp_path: Path, head: bytes) -> None:
    """Too many headers, or too many bytes of them, are refused with 431 and the connection
    closed; the limits are AUTHSERVER_MAX_HEADERS and AUTHSERVER_MAX_HEADER_BYTES."""
    async with limited_server(database_url, tmp_path) as server:
        answer = await head_answer(port_of(server.public_url), head)
        async with httpx.AsyncClient(timeout=5) as http:
            assert (await http.get(f"{server.public_url}/healthz")).status_code == 200
    assert answer.startswith(b"HTTP/1.1 431")


@pytest.mark.slow
async def test_ordinary_heads_pass(database_url: str, tmp_path: Path) -> None:
    """A browser-sized head (cookies, a long user agent) is well within the limits."""
    async with (
        limited_server(database_url, tmp_path) as server,
        httpx.AsyncClient(timeout=5) as http,
    ):
        headers = {f"X-Extra-{i}": "v" * 100 for i in range(40)}
        response = await http.get(f"{server.public_url}/healthz", headers=headers)
    assert response.status_code == 200


# the drain after SIGTERM


@pytest.mark.slow
async def test_readiness_reports_the_drain(database_url: str, tmp_path: Path) -> None:
    """After SIGTERM /readyz answers 503 while the listener still serves, for the drain delay,
    so a load balancer stops sending before the listener closes."""
    async with (
        limited_server(database_url, tmp_path, drain_delay="2") as server,
        httpx.AsyncClient(timeout=5) as http,
    ):
        assert server.process is not None
        assert (await http.get(f"{server.public_url}/readyz")).status_code == 200
        server.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.3)
        ready = await http.get(f"{server.public_url}/readyz")
        assert ready.status_code == 503
        assert ready.json()["status"] == "draining"
        assert (await http.get(f"{server.public_url}/healthz")).status_code == 200
        assert await asyncio.wait_for(server.process.wait(), 15) == 0


# a frozen database


def cluster_pids(cluster: OwnCluster) -> list[int]:
    """The postmaster of the test's own cluster and its children, from /proc."""
    postmaster = int((cluster.pgdata / "postmaster.pid").read_text().split()[0])
    pids = [postmaster]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == postmaster:
                pids.append(int(entry.name))
    return pids


@pytest.mark.slow
async def test_frozen_database_answers_503_within_the_bound(
    own_cluster: OwnCluster,  # noqa: F811
    tmp_path: Path,
) -> None:
    """With PostgreSQL stopped dead (SIGSTOP), every request ends within the request timeout
    with 503 and Retry-After; metadata keeps answering from memory; once PostgreSQL runs
    again, so does the server."""
    async with (
        limited_server(
            own_cluster.uri, tmp_path, request_timeout="3", db_acquire_timeout="1"
        ) as server,
        httpx.AsyncClient(timeout=20) as http,
    ):
        client, token = await provision(http, server)
        pids = cluster_pids(own_cluster)
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            answers = await asyncio.gather(
                *(
                    http.post(
                        f"{server.public_url}/oauth2/introspect",
                        data={"token": token},
                        auth=(client["client_id"], client["client_secret"]),
                    )
                    for _ in range(5)
                ),
                http.get(f"{server.admin_url}/clients", headers=admin_headers()),
            )
            waited = time.monotonic() - started
            metadata = await http.get(f"{server.public_url}/.well-known/oauth-authorization-server")
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGCONT)
        assert [answer.status_code for answer in answers] == [503] * 6
        assert all("retry-after" in answer.headers for answer in answers)
        # The request timeout, plus the acquire timeout asyncpg takes to give a stuck
        # connection up: well under a client's usual 10 to 30 s.
        assert waited < 3 + 1 + 1
        assert metadata.status_code == 200

        async def recovered() -> bool:
            answer = await http.post(
                f"{server.public_url}/oauth2/introspect",
                data={"token": token},
                auth=(client["client_id"], client["client_secret"]),
            )
            return answer.status_code == 200

        deadline = time.monotonic() + 10
        while not await recovered():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)


def admin_headers() -> dict[str, str]:
    from tests.conftest import ADMIN_TOKEN

    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}
