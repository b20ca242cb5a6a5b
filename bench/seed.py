"""The data the loads need: users, clients with secrets, grants, signed-in sessions and real
tokens, made with authserver's own codecs under the bench key and stored the way it stores
them (keyed secret digests, SHA-256 token digests).

Bulk rows go in with COPY; the table-filling rows of the scale runs are in grow.py.
"""

from __future__ import annotations

import base64
import random
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import asyncpg

from authserver.http.session import Session, Signer
from authserver.security.client_secrets import SecretHasher, generate_client_secret
from authserver.security.keys import Keyring
from authserver.security.tokens import TokenCodec, TokenKind, token_digest
from bench.config import SERVER_KEY

USERS = 1_000
WEB_CLIENTS = 50
FLOW_REDIRECT_URI = "https://flow.bench.test/cb"
SCOPES = ["read", "write"]

KEYRING = Keyring([SERVER_KEY])
CODEC = TokenCodec(KEYRING)


@dataclass(frozen=True)
class ClientCreds:
    client_id: str
    secret: str

    def basic(self) -> str:
        """The Authorization header value (RFC 6749 §2.3.1: form-encoded, then base64)."""
        pair = f"{quote(self.client_id, safe='')}:{quote(self.secret, safe='')}"
        return "Basic " + base64.b64encode(pair.encode()).decode()


@dataclass(frozen=True)
class Grant:
    grant_id: int
    user_id: str
    client_id: str


@dataclass(frozen=True)
class Seeded:
    introspector: ClientCreds  # a Phraseanet service: a web client with introspection on
    web_clients: tuple[ClientCreds, ...]
    flow_client: ClientCreds
    grants: tuple[Grant, ...]  # users' remembered consents to the web clients
    session_cookies: tuple[str, ...]  # signed-in users with a grant for the flow client
    valid_tokens: tuple[str, ...]  # stored, live access tokens
    unknown_tokens: tuple[str, ...]  # a correct MAC, never stored
    forged_tokens: tuple[str, ...]  # the right shape, a wrong MAC


async def seed_base(conn: asyncpg.Connection, *, valid_tokens: int, sessions: int) -> Seeded:
    # Which grant or client each token belongs to: fixed from run to run (not a secret).
    rng = random.Random(20240601)  # noqa: S311
    await conn.execute(
        """INSERT INTO users (user_id, login, email, display_name)
           SELECT 'bench-user-' || i, 'bench' || i, 'bench' || i || '@bench.test',
                  'Bench User ' || i
           FROM generate_series(1, $1) AS i""",
        USERS,
    )
    web = [
        await _client(conn, f"bench-web-{i}", f"https://app{i}.bench.test/cb")
        for i in range(1, WEB_CLIENTS + 1)
    ]
    introspector = await _client(
        conn, "bench-introspector", "https://phraseanet.bench.test/cb", introspection=True
    )
    flow_client = await _client(conn, "bench-flow", FLOW_REDIRECT_URI)
    rows = await conn.fetch(
        """INSERT INTO grants (user_id, client_id, scopes)
           SELECT 'bench-user-' || i, 'bench-web-' || (1 + (i - 1) % $2), $3::text[]
           FROM generate_series(1, $1) AS i
           RETURNING grant_id, user_id, client_id""",
        USERS,
        WEB_CLIENTS,
        SCOPES,
    )
    grants = tuple(Grant(r["grant_id"], r["user_id"], r["client_id"]) for r in rows)
    cookies = await _sessions(conn, flow_client.client_id, sessions)
    valid = await access_tokens(conn, rng, grants, web, valid_tokens)
    return Seeded(
        introspector=introspector,
        web_clients=tuple(web),
        flow_client=flow_client,
        grants=grants,
        session_cookies=cookies,
        valid_tokens=valid,
        unknown_tokens=tuple(CODEC.mint(TokenKind.ACCESS) for _ in range(valid_tokens)),
        forged_tokens=tuple(_forged() for _ in range(valid_tokens)),
    )


async def seed_refresh_tokens(
    conn: asyncpg.Connection, grants: Sequence[Grant], count: int
) -> list[tuple[str, str]]:
    """``count`` live refresh tokens, each its own family under a user's grant, as
    (client_id, token) pairs: each may be rotated once."""
    now = datetime.now(UTC)
    issued: list[tuple[str, str]] = []
    records = []
    for i in range(count):
        grant = grants[i % len(grants)]
        token = CODEC.mint(TokenKind.REFRESH)
        issued.append((grant.client_id, token))
        records.append(
            (
                token_digest(token),
                "refresh",
                grant.client_id,
                grant.user_id,
                grant.grant_id,
                uuid.uuid4(),
                "read write",
                now,
                now + timedelta(days=30),
            )
        )
    await _copy_tokens(conn, records)
    return issued


async def _client(
    conn: asyncpg.Connection, client_id: str, redirect_uri: str, *, introspection: bool = False
) -> ClientCreds:
    await conn.execute(
        """INSERT INTO clients (client_id, name, website, client_type, redirect_uris, owner_id,
                                introspection)
           VALUES ($1, $2, $3, 'web', $4, 'bench-user-1', $5)""",
        client_id,
        client_id,
        redirect_uri.rsplit("/", 1)[0],
        [redirect_uri],
        introspection,
    )
    secret = generate_client_secret()
    digest = SecretHasher(KEYRING).digest(secret)
    await conn.execute(
        "INSERT INTO client_secrets (client_id, key_id, digest) VALUES ($1, $2, $3)",
        client_id,
        digest.key_id,
        digest.digest,
    )
    return ClientCreds(client_id, secret)


async def _sessions(conn: asyncpg.Connection, client_id: str, count: int) -> tuple[str, ...]:
    """Signed-in browser sessions of users who already consented to ``client_id``: the
    authorization endpoint answers them with a code at once, no page."""
    signer = Signer(KEYRING)
    cookies = []
    for i in range(1, count + 1):
        user_id = f"bench-user-{i}"
        session = Session.new()
        await conn.execute(
            """INSERT INTO browser_sessions (sid_digest, user_id, expires_at)
               VALUES ($1, $2, now() + interval '1 day')""",
            session.digest,
            user_id,
        )
        # openid too: the same sessions serve the OpenID Connect flow without a consent page.
        await conn.execute(
            "INSERT INTO grants (user_id, client_id, scopes) VALUES ($1, $2, $3)",
            user_id,
            client_id,
            ["openid", *SCOPES],
        )
        cookies.append(signer.dump_session(session))
    return tuple(cookies)


async def access_tokens(
    conn: asyncpg.Connection,
    rng: random.Random,
    grants: Sequence[Grant],
    clients: Sequence[ClientCreds],
    count: int,
) -> tuple[str, ...]:
    """Live access tokens: four in five a user's (through a grant), one in five a client's own
    (client credentials), as Phraseanet's traffic mixes them."""
    now = datetime.now(UTC)
    tokens = []
    records = []
    for i in range(count):
        token = CODEC.mint(TokenKind.ACCESS)
        tokens.append(token)
        if i % 5:
            grant = rng.choice(grants)
            owner: tuple[str, str | None, int | None, uuid.UUID | None] = (
                grant.client_id,
                grant.user_id,
                grant.grant_id,
                uuid.uuid4(),
            )
        else:
            owner = (rng.choice(clients).client_id, None, None, None)
        # A day, not the production hour: the tokens must outlive the whole run.
        records.append(
            (token_digest(token), "access", *owner, "read write", now, now + timedelta(days=1))
        )
    await _copy_tokens(conn, records)
    return tuple(tokens)


async def _copy_tokens(conn: asyncpg.Connection, records: Sequence[tuple[Any, ...]]) -> None:
    await conn.copy_records_to_table(
        "tokens",
        records=records,
        columns=[
            "digest",
            "kind",
            "client_id",
            "user_id",
            "grant_id",
            "family_id",
            "scope",
            "created_at",
            "expires_at",
        ],
    )


def _forged() -> str:
    """An access token of the right shape whose MAC was not made with the server key."""
    while True:
        body = f"{TokenKind.ACCESS.value}_{secrets.token_urlsafe(32)}"
        token = body + base64.urlsafe_b64encode(secrets.token_bytes(12)).decode()
        if CODEC.kind_of(token) is None:  # a random MAC that verifies: 1 in 2^96, but check
            return token
