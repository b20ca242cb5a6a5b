"""Requests to the OAuth endpoints answered the full way by the connection that held them
(authserver.http.protocol, authserver.http.held), without uvicorn's cycle: the same answers as
through the ASGI app, in order behind and ahead of others, with the client's address behind a
trusted proxy, and on their way out at shutdown."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.test_lifecycle import error_records
from tests.test_memory_answers import Setup, bodies, connect, prepared_server, raw_exchange

# A request that ends the connection (so a raw exchange's read ends); it is not held.
CLOSING = b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
# No caches: every request here goes the full way.
SETTINGS = {"introspection_cache_entries": "0", "drain_delay": "0", "janitor_interval": "0"}


@pytest.fixture
async def setup(database_url: str, tmp_path: Path) -> AsyncIterator[Setup]:
    async with prepared_server(database_url, tmp_path, SETTINGS) as ready:
        yield ready


def waiting(**settings: str) -> dict[str, str]:
    """SETTINGS, with statements that wait up to 10 s for a row another transaction holds (so
    a test decides how long a token's insert waits), and ``settings`` on top."""
    return {**SETTINGS, "db_lock_timeout": "10", "db_statement_timeout": "10", **settings}


def token_request(
    client: dict[str, Any],
    body: bytes = b"grant_type=client_credentials",
    *,
    secret: str | None = None,
    close: bool = False,
    extra: bytes = b"",
) -> bytes:
    credentials = f"{client['client_id']}:{secret or client['client_secret']}".encode()
    return (
        b"POST /oauth2/token HTTP/1.1\r\nHost: test\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Authorization: Basic " + base64.b64encode(credentials) + b"\r\n"
        b"X-Request-Id: held-test\r\n"
        b"Content-Length: "
        + str(len(body)).encode()
        + b"\r\n"
        + (b"Connection: close\r\n" if close else b"")
        + extra
        + b"\r\n"
        + body
    )


@asynccontextmanager
async def client_row_held(database_url: str, client_id: str) -> AsyncIterator[None]:
    """Hold a client's row in another transaction: a token's insert for that client waits
    for it (its foreign key check) until the block ends."""
    blocker = await asyncpg.connect(database_url)
    try:
        async with blocker.transaction():
            await blocker.execute(
                "SELECT 1 FROM clients WHERE client_id = $1 FOR UPDATE", client_id
            )
            yield
    finally:
        await blocker.close()


def access_lines(output: str, request_id: str) -> list[dict[str, Any]]:
    """The server's access lines for the request with ``request_id``."""
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return [r for r in records if r.get("request_id") == request_id and "route" in r]


def heads(raw: bytes) -> list[tuple[bytes, list[bytes]]]:
    """Each response's status line and its header lines, without those that differ from one
    answer to the next (the date) or from the connection's fate."""
    found = []
    for head in re.findall(rb"HTTP/1\.1 [^\r]*\r\n(?:[^\r]+\r\n)*\r\n", raw):
        status, *lines = head.rstrip(b"\r\n").split(b"\r\n")
        kept = [line for line in lines if not line.lower().startswith((b"date:", b"connection:"))]
        found.append((status, kept))
    return found


@pytest.mark.parametrize(
    ("body", "wrong_secret"),
    [
        (b"grant_type=client_credentials", True),
        (b"grant_type=nonsense", False),
        (b"grant_type=client_credentials&grant_type=client_credentials", False),
        (b"grant_type=password&username=nobody&password=x", False),
    ],
    ids=["wrong secret", "unsupported grant", "repeated parameter", "wrong password"],
)
async def test_held_answer_is_the_apps_answer(
    setup: Setup, body: bytes, wrong_secret: bool
) -> None:
    """A held request (kept alive) gets the answer the ASGI app gives the same request (with
    ``Connection: close`` it is not held), head and body."""
    secret = "wrong-secret-0123456789" if wrong_secret else None
    held = await raw_exchange(
        setup.server,
        token_request(setup.app, body, secret=secret),
        token_request(setup.app, b"grant_type=nonsense", close=True),  # ends the connection
    )
    through_app = await raw_exchange(
        setup.server, token_request(setup.app, body, secret=secret, close=True)
    )
    assert heads(held)[0] == heads(through_app)[0]
    assert bodies(held)[0] == bodies(through_app)[0]
    assert bodies(held)[0]["error"]


async def test_issued_token_answer_has_the_apps_shape(setup: Setup) -> None:
    """A token issued through a held request has the headers and fields of one issued through
    the app, and works."""
    held = await raw_exchange(
        setup.server,
        token_request(setup.app),
        token_request(setup.app, b"grant_type=nonsense", close=True),
    )
    through_app = await raw_exchange(setup.server, token_request(setup.app, close=True))
    held_head, app_head = heads(held)[0], heads(through_app)[0]
    assert held_head[0] == app_head[0] == b"HTTP/1.1 200 OK"
    assert [line.split(b":")[0] for line in held_head[1]] == [
        line.split(b":")[0] for line in app_head[1]
    ]
    issued = bodies(held)[0]
    assert sorted(issued) == sorted(bodies(through_app)[0])
    introspected = await setup.introspect(issued["access_token"])
    assert introspected.json()["active"] is True


async def test_requests_behind_a_held_one_wait_their_turn(setup: Setup) -> None:
    """A held request being answered, then two for uvicorn (a GET, and a POST behind a request
    in progress), all in one write: three answers, in order."""
    issue = token_request(setup.app)
    health = b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n"
    refused = token_request(setup.app, secret="wrong-secret-0123456789", close=True)
    raw = await raw_exchange(setup.server, issue + health + refused)
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", raw)
    assert statuses == [b"200", b"200", b"401"]
    answers = bodies(raw)
    assert "access_token" in answers[0]
    assert answers[-1]["error"] == "invalid_client"


async def test_address_behind_a_trusted_proxy_is_the_forwarded_one(
    setup: Setup, database_url: str
) -> None:
    """A held request from a trusted proxy (127.0.0.1, uvicorn's default) is the forwarded
    client's: its failed password counts against that address, as through the app."""
    raw = await raw_exchange(
        setup.server,
        token_request(
            setup.app,
            b"grant_type=password&username=owner-1&password=wrong",
            extra=b"X-Forwarded-For: 203.0.113.7\r\n",
        ),
        token_request(setup.app, b"grant_type=nonsense", close=True),
    )
    assert bodies(raw)[0]["error"] == "invalid_grant"
    conn = await asyncpg.connect(database_url)
    try:
        keys = await conn.fetch(
            "SELECT throttle_key FROM login_failures WHERE throttle_key LIKE 'address:%'"
        )
    finally:
        await conn.close()
    assert [row["throttle_key"] for row in keys] == ["address:203.0.113.7"]


async def test_held_answer_at_shutdown_goes_out_then_the_connection_closes(
    database_url: str, tmp_path: Path
) -> None:
    """A held request still being answered when the server's own shutdown begins (its token's
    insert waits for a client row another transaction holds) gets its answer, with
    ``Connection: close``, and then the connection ends."""
    async with prepared_server(database_url, tmp_path, waiting()) as ready:
        server = ready.server
        reader, writer = await connect(server)
        try:
            async with client_row_held(database_url, ready.app["client_id"]):
                writer.write(token_request(ready.app))
                await writer.drain()
                await asyncio.sleep(0.2)
                assert server.process is not None
                server.process.terminate()
                # Past the grace before uvicorn's shutdown (serve.FIRST_REQUEST_GRACE).
                await asyncio.sleep(1.5)
            raw = await asyncio.wait_for(reader.read(), 10.0)
        finally:
            writer.close()
    assert raw.startswith(b"HTTP/1.1 200 OK")
    assert b"\r\nconnection: close\r\n" in raw.lower()
    assert "access_token" in json.loads(raw.split(b"\r\n\r\n", 1)[1])


async def test_request_begun_behind_a_held_one_outlives_the_keep_alive(setup: Setup) -> None:
    """A request begun in the same write as a held one, and finished after uvicorn's 5 s
    keep-alive, is answered: no keep-alive timer runs under it once the held answer is out."""
    follow = token_request(setup.app, secret="wrong-secret-0123456789", close=True)
    raw = await raw_exchange(
        setup.server, token_request(setup.app) + follow[:40], follow[40:], pause=6
    )
    assert re.findall(rb"HTTP/1\.1 (\d{3}) ", raw) == [b"200", b"401"]


async def test_held_request_past_the_deadline_is_cut_off(database_url: str, tmp_path: Path) -> None:
    """A held request still waiting when the request timeout passes is answered 503 with
    Retry-After, as through the app (checklist R-09)."""
    async with prepared_server(database_url, tmp_path, waiting(request_timeout="1")) as ready:
        server = ready.server
        async with client_row_held(database_url, ready.app["client_id"]):
            raw = await raw_exchange(server, token_request(ready.app, close=False) + CLOSING)
    assert raw.startswith(b"HTTP/1.1 503 ")
    assert b"\r\nretry-after: 1\r\n" in raw
    assert bodies(raw)[0]["error"] == "temporarily_unavailable"


async def test_client_leaving_a_pending_answer_is_logged_once(
    database_url: str, tmp_path: Path
) -> None:
    """A client that leaves while its held request is being answered costs nothing more: the
    request gets its one access line, no error is logged, and the next client is served."""
    async with prepared_server(database_url, tmp_path, waiting()) as ready:
        server = ready.server
        async with client_row_held(database_url, ready.app["client_id"]):
            _, writer = await connect(server)
            writer.write(token_request(ready.app))
            await writer.drain()
            await asyncio.sleep(0.2)
            writer.close()
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.5)  # the insert, then the access line's batch
        served = await raw_exchange(server, token_request(ready.app, close=True))
        await asyncio.sleep(0.3)  # access lines wait up to 50 ms for their batch
        output = server.output()
    assert served.startswith(b"HTTP/1.1 200 OK")
    assert [line["route"] for line in access_lines(output, "held-test")].count("/oauth2/token") == 2
    assert error_records(output) == []


async def test_held_request_has_one_access_line_with_its_id(setup: Setup) -> None:
    """A held request is logged once, under the request id it sent, with its client."""
    raw = await raw_exchange(setup.server, token_request(setup.app, close=False) + CLOSING)
    assert raw.startswith(b"HTTP/1.1 200 OK")
    assert b"\r\nx-request-id: held-test\r\n" in raw
    await asyncio.sleep(0.3)  # access lines wait up to 50 ms for their batch
    lines = access_lines(setup.server.output(), "held-test")
    token_lines = [line for line in lines if line["status"] == 200]
    assert len(token_lines) == 1
    assert token_lines[0]["client_id"] == setup.app["client_id"]


async def test_pipelined_answer_is_not_cut_off_by_a_head_behind_it(
    database_url: str, tmp_path: Path
) -> None:
    """A held request, a complete one queued behind it that takes longer than the head
    timeout, and the start of a third: the second is answered in full; only the third, never
    finished, gets 408."""
    async with prepared_server(database_url, tmp_path, waiting(header_timeout="1")) as ready:
        server = ready.server
        reader, writer = await connect(server)
        try:
            async with client_row_held(database_url, ready.introspector["client_id"]):
                first, second = token_request(ready.app), token_request(ready.introspector)
                writer.write(first + second + token_request(ready.app)[:30])
                await writer.drain()
                await asyncio.sleep(2.0)  # the second waits for the row, past the head timeout
            raw = await asyncio.wait_for(reader.read(), 10.0)
        finally:
            writer.close()
    assert re.findall(rb"HTTP/1\.1 (\d{3}) ", raw) == [b"200", b"200", b"408"]


async def test_held_answers_carry_the_current_date(setup: Setup) -> None:
    """The Date header of a held answer is uvicorn's of the moment, not the one of the first
    answer its status had."""
    dates = []
    for _ in range(2):
        raw = await raw_exchange(setup.server, token_request(setup.app) + CLOSING)
        assert raw.startswith(b"HTTP/1.1 200 OK")
        date = re.search(rb"\r\ndate: ([^\r]+)\r\n", raw)
        assert date is not None
        dates.append(date.group(1))
        await asyncio.sleep(1.2)  # uvicorn renews its date once a second
    assert dates[0] != dates[1]
