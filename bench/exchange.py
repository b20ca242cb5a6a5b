"""The token-exchange load (RFC 8693): web apps trading their users' access tokens for
narrower ones, as a Phraseanet service passing a request on would.

Self-contained: it lets the seeded web clients exchange, then writes one request per seeded
user token, sent by the client the token was issued to (wrk picks lines at random; an
exchange is not single-use, so a token may be sent many times).
"""

from __future__ import annotations

from pathlib import Path

import asyncpg

from authserver.security.tokens import token_digest
from bench.requests import write_lines
from bench.seed import Seeded

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 -- a URN
RESPONSE_PATTERN = '"issued_token_type"'  # Lua pattern: only a successful answer has it


async def exchange_requests(conn: asyncpg.Connection, path: Path, seeded: Seeded) -> Path:
    await conn.execute(
        "UPDATE clients SET token_exchange = true WHERE client_id LIKE 'bench-web-%'"
    )
    by_digest = {token_digest(token): token for token in seeded.valid_tokens}
    rows = await conn.fetch(
        "SELECT digest, client_id FROM tokens WHERE digest = ANY($1) AND user_id IS NOT NULL",
        list(by_digest),
    )
    clients = {client.client_id: client for client in seeded.web_clients}
    return write_lines(
        path,
        (
            (
                clients[row["client_id"]].basic(),
                {
                    "grant_type": GRANT_TYPE,
                    "subject_token": by_digest[row["digest"]],
                    "subject_token_type": ACCESS_TOKEN_TYPE,
                    "scope": "read",
                },
            )
            for row in rows
        ),
    )
