"""Introspection answered by the connection from memory (authserver.http.protocol and
authserver.oauth.memory): the same answer as the full path, to the byte, over real HTTP, and
nothing it must not answer."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from authserver.security.tokens import TokenKind
from tests.conftest import ADMIN_TOKEN
from tests.live_server import LiveServer, live_server
from tests.oauth_support import CODEC
from tests.token_support import basic

CACHED = {"client_cache_ttl": "30", "introspection_cache_entries": "1000", "drain_delay": "0"}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
HIT = re.compile(r'^authserver_introspection_cache_lookups_total\{result="hit"\} (\S+)$', re.M)
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS = "urn:ietf:params:oauth:token-type:access_token"
PASSWORD = "correct horse battery"


class Setup:
    """One live server with both caches on, a client that may introspect and one that may not."""

    def __init__(self, server: LiveServer, http: httpx.AsyncClient) -> None:
        self.server = server
        self.http = http
        self.introspector: dict[str, Any] = {}
        self.app: dict[str, Any] = {}

    async def register(self, **fields: Any) -> dict[str, Any]:
        body = {
            "website": "https://app.example",
            "type": "web",
            "redirect_uris": ["https://app.example/cb"],
            "owner_id": "owner-1",
            **fields,
        }
        response = await self.http.post(
            self.server.admin_url + "/clients", json=body, headers=ADMIN
        )
        assert response.status_code == 201, response.text
        client: dict[str, Any] = response.json()
        return client

    async def token(self, client: dict[str, Any], **params: str) -> str:
        response = await self.http.post(
            self.server.public_url + "/oauth2/token",
            data=params or {"grant_type": "client_credentials"},
            headers=auth(client),
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    async def introspect(
        self, token: str, client: dict[str, Any] | None = None, request_id: str | None = None
    ) -> httpx.Response:
        headers = auth(client or self.introspector)
        if request_id is not None:
            headers["X-Request-Id"] = request_id
        return await self.http.post(
            self.server.public_url + "/oauth2/introspect", data={"token": token}, headers=headers
        )

    async def hits(self) -> float:
        text = (await self.http.get(self.server.admin_url + "/metrics", headers=ADMIN)).text
        match = HIT.search(text)
        return 0.0 if match is None else float(match.group(1))

    async def cached(self, token: str) -> httpx.Response:
        """Introspect ``token`` twice; the second answer, asserted to come from memory."""
        first = await self.introspect(token)
        assert first.status_code == 200, first.text
        before = await self.hits()
        second = await self.introspect(token)
        assert await self.hits() == before + 1
        return second


def auth(client: dict[str, Any]) -> dict[str, str]:
    return basic(client["client_id"], client["client_secret"])


@asynccontextmanager
async def prepared_server(
    database_url: str, tmp_path: Path, settings: dict[str, str]
) -> AsyncIterator[Setup]:
    """A live server with ``settings``, its owner and two clients registered."""
    async with (
        live_server(database_url, tmp_path / "server.log", **settings) as server,
        httpx.AsyncClient(timeout=10.0) as http,
    ):
        yield await prepared(server, http)


@pytest.fixture
async def setup(database_url: str, tmp_path: Path) -> AsyncIterator[Setup]:
    async with prepared_server(database_url, tmp_path, CACHED) as ready:
        yield ready


async def prepared(server: LiveServer, http: httpx.AsyncClient) -> Setup:
    """The owner (a login JSON must escape) and the two clients, registered on ``server``."""
    response = await http.put(
        server.admin_url + "/users/owner-1",
        json={"login": 'zoë "the owner"', "password": PASSWORD},
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    ready = Setup(server, http)
    ready.introspector = await ready.register(name="Phraseanet API", introspection=True)
    ready.app = await ready.register(name="App", password_grant=True)
    return ready


def comparable(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body, without what differs from one answer to the next."""
    headers = [
        (k, v) for k, v in response.headers.multi_items() if k not in ("date", "x-request-id")
    ]
    return response.status_code, headers, response.content


async def full_and_memory(setup: Setup, token: str) -> tuple[httpx.Response, httpx.Response]:
    full = await setup.introspect(token)  # a miss: the full path, which fills the cache
    return full, await setup.cached(token)


async def test_client_token_answer_is_the_full_answer(setup: Setup) -> None:
    """A client's own token: the answer from memory is the full path's, byte for byte."""
    full, memory = await full_and_memory(setup, await setup.token(setup.app))
    assert memory.json()["active"] is True
    assert comparable(memory) == comparable(full)


async def test_user_token_answer_is_the_full_answer(setup: Setup) -> None:
    """A user's token (a username JSON must escape): the same answer, byte for byte."""
    token = await setup.token(
        setup.app, grant_type="password", username='zoë "the owner"', password=PASSWORD
    )
    full, memory = await full_and_memory(setup, token)
    assert memory.json()["username"] == 'zoë "the owner"'
    assert comparable(memory) == comparable(full)


async def test_exchanged_token_answer_is_the_full_answer(setup: Setup) -> None:
    """An exchanged token's act and aud (RFC 8693) come from memory as from the database."""
    exchanger = await setup.register(name="Exchanger", token_exchange=True, password_grant=True)
    resource = await setup.register(name="Resource", resource_server=True, token_exchange=True)
    subject = await setup.token(
        exchanger, grant_type="password", username='zoë "the owner"', password=PASSWORD
    )
    exchanged = await setup.token(
        exchanger,
        grant_type=EXCHANGE,
        subject_token=subject,
        subject_token_type=ACCESS,
        audience=resource["client_id"],
    )
    passed_on = await setup.token(
        resource, grant_type=EXCHANGE, subject_token=exchanged, subject_token_type=ACCESS
    )
    full, memory = await full_and_memory(setup, passed_on)
    assert memory.json()["act"]["sub"] == resource["client_id"]
    assert comparable(memory) == comparable(full)


async def test_request_id_is_echoed_and_logged(setup: Setup) -> None:
    """An answer from memory echoes X-Request-Id and gets its access line, client named."""
    token = await setup.token(setup.app)
    await setup.introspect(token)
    response = await setup.introspect(token, request_id="from-memory-1")
    assert response.headers["x-request-id"] == "from-memory-1"
    await asyncio.sleep(0.2)  # access lines wait up to 50 ms for their batch
    lines = [json.loads(line) for line in setup.server.output().splitlines() if "{" in line[:1]]
    line = next(entry for entry in lines if entry.get("request_id") == "from-memory-1")
    assert line["route"] == "/oauth2/introspect"
    assert line["status"] == 200
    assert line["client_id"] == setup.introspector["client_id"]


async def test_wrong_secret_after_a_right_one_is_refused(setup: Setup) -> None:
    """A header that once proved the secret proves nothing for another secret: 401."""
    token = await setup.token(setup.app)
    await setup.cached(token)
    wrong = {**setup.introspector, "client_secret": setup.introspector["client_secret"] + "x"}
    response = await setup.introspect(token, wrong)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_disabled_client_is_refused_at_once(setup: Setup) -> None:
    """A client disabled after its header was proved is refused on its next request."""
    token = await setup.token(setup.app)
    await setup.cached(token)
    client_id = setup.introspector["client_id"]
    response = await setup.http.patch(
        f"{setup.server.admin_url}/clients/{client_id}", json={"active": False}, headers=ADMIN
    )
    assert response.status_code == 200, response.text
    for _ in range(100):  # the change reaches the client cache through PostgreSQL
        response = await setup.introspect(token)
        if response.status_code == 401:
            break
        await asyncio.sleep(0.02)
    assert response.status_code == 401


async def test_client_not_allowed_to_introspect_is_refused(setup: Setup) -> None:
    """A cached token introspected by a client without the right: the full path's refusal."""
    token = await setup.token(setup.app)
    await setup.cached(token)
    response = await setup.introspect(token, setup.app)
    assert response.status_code in (401, 403), response.text
    assert "active" not in response.json()


async def test_revoked_token_reads_inactive_at_once(setup: Setup) -> None:
    """A token revoked through this server is inactive on the very next introspection."""
    token = await setup.token(setup.app)
    await setup.cached(token)
    revoked = await setup.http.post(
        setup.server.public_url + "/oauth2/revoke", data={"token": token}, headers=auth(setup.app)
    )
    assert revoked.status_code == 200
    assert (await setup.introspect(token)).json() == {"active": False}


async def connect(server: LiveServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A plain TCP connection to the server's public listener."""
    host, port = server.public_url.removeprefix("http://").split(":")
    return await asyncio.open_connection(host, int(port))


async def raw_exchange(server: LiveServer, *writes: bytes, pause: float = 0.0) -> bytes:
    """Send ``writes`` on one connection (``pause`` seconds apart), then read until it closes."""
    reader, writer = await connect(server)
    try:
        for data in writes:
            writer.write(data)
            await writer.drain()
            await asyncio.sleep(pause)
        return await asyncio.wait_for(reader.read(), 10.0)
    finally:
        writer.close()


def introspection(
    client: dict[str, Any], token: str, *, close: bool = False, body: bytes | None = None
) -> bytes:
    body = b"token=" + token.encode() if body is None else body
    credentials = f"{client['client_id']}:{client['client_secret']}".encode()
    return (
        b"POST /oauth2/introspect HTTP/1.1\r\nHost: test\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Authorization: Basic " + base64.b64encode(credentials) + b"\r\n"
        b"Content-Length: "
        + str(len(body)).encode()
        + b"\r\n"
        + (b"Connection: close\r\n" if close else b"")
        + b"\r\n"
        + body
    )


def bodies(raw: bytes) -> list[dict[str, Any]]:
    """The JSON bodies of the HTTP/1.1 responses in ``raw``, in order."""
    return [json.loads(body) for body in re.findall(rb"\r\n\r\n(\{[^\r]*?\})(?=HTTP/1\.1|$)", raw)]


async def test_pipelined_requests_are_answered_in_order(setup: Setup) -> None:
    """Three requests in one write, from memory, the full path and memory: answered in order."""
    token = await setup.token(setup.app)
    await setup.cached(token)
    one = introspection(setup.introspector, token)
    unknown = introspection(setup.introspector, CODEC.mint(TokenKind.ACCESS))  # a lookup
    last = introspection(setup.introspector, token, close=True)
    raw = await raw_exchange(setup.server, one + unknown + last)
    assert raw.count(b"HTTP/1.1 200 OK") == 3
    assert [body["active"] for body in bodies(raw)] == [True, False, True]


async def test_body_in_pieces_is_answered(setup: Setup) -> None:
    """A head and a body sent in separate pieces, apart in time, are answered from memory."""
    token = await setup.token(setup.app)
    await setup.cached(token)
    request = introspection(setup.introspector, token, close=True)
    head, body = request.split(b"\r\n\r\n", 1)
    before = await setup.hits()
    raw = await raw_exchange(setup.server, head + b"\r\n\r\n", body[:10], body[10:], pause=0.05)
    assert [entry["active"] for entry in bodies(raw)] == [True]
    assert await setup.hits() == before + 1


async def test_body_over_the_limit_is_refused(setup: Setup) -> None:
    """A body past the 16 KiB limit is handed on whole and refused as the full path does."""
    token = await setup.token(setup.app)
    await setup.cached(token)
    body = b"token=" + token.encode() + b"&pad=" + b"x" * 17_000
    raw = await raw_exchange(
        setup.server, introspection(setup.introspector, token, close=True, body=body)
    )
    assert raw.startswith(b"HTTP/1.1 400 ")
    assert bodies(raw)[0]["error"] == "invalid_request"


async def test_request_held_at_shutdown_is_answered(setup: Setup) -> None:
    """A request whose body is still on its way when the server stops is answered."""
    token = await setup.token(setup.app)
    await setup.cached(token)
    request = introspection(setup.introspector, token)
    head, body = request.split(b"\r\n\r\n", 1)
    reader, writer = await connect(setup.server)
    try:
        writer.write(head + b"\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.1)
        assert setup.server.process is not None
        setup.server.process.terminate()
        await asyncio.sleep(0.8)  # past the grace for a first request (serve.FIRST_REQUEST_GRACE)
        writer.write(body)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 10.0)
    finally:
        writer.close()
    assert raw.startswith(b"HTTP/1.1 200 OK")
    assert bodies(raw)[0]["active"] is True


async def test_forged_token_is_inactive_and_counted_as_a_guess(
    database_url: str, tmp_path: Path
) -> None:
    """Forged tokens are answered inactive from memory and still pause a scanning client."""
    async with (
        live_server(
            database_url, tmp_path / "server.log", **CACHED, introspection_max_guesses="3"
        ) as server,
        httpx.AsyncClient(timeout=5.0) as http,
    ):
        setup = await prepared(server, http)
        token = await setup.token(setup.app)
        await setup.cached(token)
        forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        answers = [await setup.introspect(forged) for _ in range(3)]
        assert [answer.json() for answer in answers] == [{"active": False}] * 3
        text = (await http.get(server.admin_url + "/metrics", headers=ADMIN)).text
        assert 'authserver_failed_guesses_total{endpoint="introspect",reason="forged"} 3.0' in text
        for _ in range(100):  # the count reaches PostgreSQL, and the pause the client cache
            response = await setup.introspect(token)
            if response.status_code == 429:
                break
            await asyncio.sleep(0.02)
        assert response.status_code == 429
        assert response.headers["retry-after"]


async def test_request_after_an_answer_from_memory_outlives_the_keep_alive(setup: Setup) -> None:
    """A request begun in the same write as an answer from memory, handed on and finished
    later than uvicorn's 5 s keep-alive, is still answered."""
    token = await setup.token(setup.app)
    await setup.cached(token)
    follow = introspection(setup.introspector, CODEC.mint(TokenKind.ACCESS), close=True)
    raw = await raw_exchange(
        setup.server, introspection(setup.introspector, token) + follow[:40], follow[40:], pause=6
    )
    assert [entry["active"] for entry in bodies(raw)] == [True, False]


async def test_declared_body_over_the_limit_is_refused_at_once(setup: Setup) -> None:
    """A Content-Length past 16 KiB is refused on the head alone, not held for a body."""
    head = introspection(setup.introspector, "x").split(b"\r\n\r\n", 1)[0]
    head = re.sub(rb"Content-Length: \d+", b"Content-Length: 20000", head)
    reader, writer = await connect(setup.server)
    try:
        writer.write(head + b"\r\n\r\n")
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 3.0)
    finally:
        writer.close()
    assert status.startswith(b"HTTP/1.1 400 ")


async def test_client_leaving_a_held_request_is_logged(setup: Setup) -> None:
    """A client that leaves before its held request's body is in gets its 499 access line."""
    token = await setup.token(setup.app)
    _, writer = await connect(setup.server)
    writer.write(introspection(setup.introspector, token)[:-5])
    await writer.drain()
    await asyncio.sleep(0.1)
    writer.close()
    await asyncio.sleep(0.3)  # access lines wait up to 50 ms for their batch
    lines = [json.loads(line) for line in setup.server.output().splitlines() if "{" in line[:1]]
    assert any(
        line.get("status") == 499 and line.get("route") == "/oauth2/introspect" for line in lines
    )
