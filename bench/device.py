"""The device-polling load (RFC 8628 §3.4): devices whose users have not decided yet, polling
the token endpoint. What one poll costs says how many waiting devices a process carries: at
the default 5-second interval, N polls per second are 5 N devices.

Self-contained: it lets the seeded web clients use the grant, stores one pending device code
per request line (as the device authorization endpoint would, digests only), and writes each
code with the Basic auth of its client. wrk polls far faster than the interval, so most answers
are ``slow_down`` and the rest ``authorization_pending``: both are the pending device's answer,
and each costs the poll's stamp (one conditional UPDATE), as a well-behaved device's does.
"""

from __future__ import annotations

import os
from pathlib import Path

import asyncpg

from authserver.security.tokens import TokenKind, token_digest
from bench.requests import write_lines
from bench.seed import CODEC, Seeded

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
DEVICES = 5_000
# Lua pattern: "authorization_pending" or "slow_down" (not "access_denied", not "expired_token").
RESPONSE_PATTERN = '"error"%s*:%s*"[as][ul]'


async def polling_requests(conn: asyncpg.Connection, path: Path, seeded: Seeded) -> Path:
    await conn.execute("UPDATE clients SET device_grant = true WHERE client_id LIKE 'bench-web-%'")
    clients = seeded.web_clients
    lines = []
    rows = []
    for index in range(DEVICES):
        client = clients[index % len(clients)]
        code = CODEC.mint(TokenKind.DEVICE)
        rows.append((token_digest(code), os.urandom(32), client.client_id))
        lines.append((client.basic(), {"grant_type": GRANT_TYPE, "device_code": code}))
    await conn.executemany(
        """INSERT INTO device_codes (digest, user_code_digest, client_id, scope, expires_at,
                                     poll_interval)
           VALUES ($1, $2, $3, 'read', now() + interval '1 day', 5)""",
        rows,
    )
    return write_lines(path, lines)
