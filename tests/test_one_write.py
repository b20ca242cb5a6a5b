"""A response's head and body in one write (authserver.http.protocol.OneWrite): over a real
socket for the transport itself, and over HTTP against a real server for the requests whose
head may not wait (HEAD, ``Expect: 100-continue``)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from authserver.http.held import OneWrite
from tests.live_server import LiveServer, live_server

Pair = tuple[OneWrite, socket.socket]  # writing through it, and the other end


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
    try:
        yield OneWrite(transport), theirs
    finally:
        transport.close()
        theirs.close()


async def received(peer: socket.socket) -> bytes:
    """What reached the other end by now (after a moment for the loop to write)."""
    await asyncio.sleep(0.05)
    try:
        return peer.recv(65536)
    except BlockingIOError:
        return b""


async def test_head_waits_for_the_body(pair: Pair) -> None:
    """The head is not sent alone; it leaves with the first part of the body."""
    one, peer = pair
    one.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    assert await received(peer) == b""
    one.write(b"{}")
    assert await received(peer) == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"


async def test_later_parts_pass_at_once(pair: Pair) -> None:
    """After the first body part, each write goes out as it comes (a streamed body)."""
    one, peer = pair
    one.write(b"head;")
    one.write(b"one;")
    assert await received(peer) == b"head;one;"
    one.write(b"two;")
    assert await received(peer) == b"two;"


async def test_close_sends_a_held_head(pair: Pair) -> None:
    """A response cut short after its head (the app failed) still sends the head."""
    one, peer = pair
    one.write(b"HTTP/1.1 200 OK\r\n\r\n")
    one.close()
    assert await received(peer) == b"HTTP/1.1 200 OK\r\n\r\n"
    assert one.is_closing()


@pytest.fixture
async def server(database_url: str, tmp_path: Path) -> AsyncIterator[LiveServer]:
    async with live_server(database_url, tmp_path / "server.log", janitor_interval="0") as live:
        yield live


async def exchange(
    server: LiveServer, request: bytes, then: bytes | None = None
) -> tuple[bytes, bytes]:
    """Send ``request`` and read what comes back within a moment; then, if there is ``then``,
    send it and read up to the end of the JSON answer that follows."""
    port = urlsplit(server.public_url).port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        try:
            first = await asyncio.wait_for(reader.read(65536), 2.0)
        except TimeoutError:
            first = b""
        if then is None:
            return first, b""
        writer.write(then)
        await writer.drain()
        return first, await asyncio.wait_for(reader.readuntil(b"}"), 5.0)
    finally:
        writer.close()


async def test_head_request_gets_its_head(server: LiveServer) -> None:
    """A HEAD request on a kept-alive connection (no body follows its answer's head) is
    answered at once, not when the connection closes."""
    first, _ = await exchange(server, b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 200 ")
    assert first.endswith(b"\r\n\r\n")


async def test_continue_is_sent_before_the_body(server: LiveServer) -> None:
    """A client that waits for ``100 Continue`` (on a kept-alive connection, to a path whose
    plain requests the connection holds) gets it before it sends the body, then the answer."""
    body = b"grant_type=client_credentials"
    first, rest = await exchange(
        server,
        b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nExpect: 100-continue\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body),
        body,
    )
    assert first == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert rest.startswith(b"HTTP/1.1 401 ")
    assert b'"invalid_client"' in rest
