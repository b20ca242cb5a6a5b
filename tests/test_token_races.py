"""Concurrent requests for single-use things: codes and refresh tokens (checklist R-01, R-03,
R-04). The in-process app gets a pool as large as the burst, so the requests really overlap in
the database."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import asyncpg
import httpx
import pytest

from authserver.db.store import Store
from authserver.security.tokens import token_digest
from tests.conftest import waiting_for_a_lock
from tests.token_support import (
    FORM,
    code_params,
    post_token,
    public_app,
    refresh,
    stored_token,
    web_auth,
    web_code,
    web_tokens,
)

Client = dict[str, Any]

BURST = 20
ROUNDS = 4


@pytest.fixture
async def racing(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The public API with a pool large enough for a whole burst at once."""
    async with public_app(database_url, pool_max_size=str(BURST)) as client:
        yield client


def outcomes(responses: list[httpx.Response]) -> Counter[tuple[int, str | None]]:
    """How many responses of each (status, error) there were."""
    return Counter(
        (r.status_code, None if r.status_code == 200 else r.json().get("error")) for r in responses
    )


async def active_refresh_tokens(db: asyncpg.Connection, family_id: Any) -> int:
    count: int = await db.fetchval(
        """SELECT count(*) FROM tokens WHERE family_id = $1 AND kind = 'refresh'
           AND revoked_at IS NULL AND consumed_at IS NULL AND expires_at > now()""",
        family_id,
    )
    return count


async def test_concurrent_code_redemption_has_one_winner(
    racing: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """R-01: of 20 simultaneous redemptions of one code exactly one succeeds, none fails 5xx."""
    for _ in range(ROUNDS):
        code, verifier = await web_code(db, web_client, alice)
        responses = await asyncio.gather(
            *(
                post_token(racing, code_params(code, verifier), headers=web_auth(web_client))
                for _ in range(BURST)
            )
        )
        assert outcomes(responses) == {(200, None): 1, (400, "invalid_grant"): BURST - 1}
        families = await db.fetchval(
            "SELECT count(DISTINCT family_id) FROM tokens WHERE code_digest = $1",
            token_digest(code),
        )
        assert families == 1


async def test_concurrent_refresh_has_one_winner(
    racing: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """R-03: 20 simultaneous refreshes: one wins, no 5xx, at most one refresh token stays live."""
    for _ in range(ROUNDS):
        tokens = await web_tokens(racing, db, web_client, alice)
        row = await stored_token(db, tokens["refresh_token"])
        assert row is not None
        params = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
        responses = await asyncio.gather(
            *(post_token(racing, params, headers=web_auth(web_client)) for _ in range(BURST))
        )
        assert outcomes(responses) == {(200, None): 1, (400, "invalid_grant"): BURST - 1}
        assert await active_refresh_tokens(db, row["family_id"]) <= 1


async def test_refresh_racing_revocation_leaves_nothing_alive(
    racing: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """R-04: a refresh racing the revocation of its refresh token leaves no live token behind."""
    for _ in range(ROUNDS * 2):
        tokens = await web_tokens(racing, db, web_client, alice)
        row = await stored_token(db, tokens["refresh_token"])
        assert row is not None
        revoke = racing.post(
            "/oauth2/revoke",
            content=urlencode(
                {"token": tokens["refresh_token"], "token_type_hint": "refresh_token"}
            ),
            headers={"Content-Type": FORM, **web_auth(web_client)},
        )
        params = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
        refreshes = [post_token(racing, params, headers=web_auth(web_client)) for _ in range(3)]
        responses = await asyncio.gather(revoke, *refreshes)
        assert responses[0].status_code == 200
        assert all(response.status_code < 500 for response in responses)
        alive = await db.fetchval(
            """SELECT count(*) FROM tokens WHERE family_id = $1
               AND revoked_at IS NULL AND consumed_at IS NULL""",
            row["family_id"],
        )
        assert alive == 0


async def test_family_revocation_locks_the_presented_token_first(
    racing: httpx.AsyncClient,
    db: asyncpg.Connection,
    database_url: str,
    web_client: Client,
    alice: Client,
) -> None:
    """R-04: a family's revocation waits on its presented refresh token holding no other row."""
    first = await web_tokens(racing, db, web_client, alice)
    rotated = await refresh(racing, web_client, first["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    presented = token_digest(rotated.json()["refresh_token"])  # the family's newest row
    row = await stored_token(db, first["refresh_token"])
    assert row is not None
    family = row["family_id"]
    holder = await asyncpg.connect(database_url)
    revoker = await asyncpg.connect(database_url)
    try:
        async with holder.transaction():
            # What a racing revocation of that token holds while it revokes the family.
            await holder.execute("SELECT FROM tokens WHERE digest = $1 FOR UPDATE", presented)
            revoking = asyncio.create_task(Store(revoker).tokens.revoke_family(family, presented))
            await waiting_for_a_lock(db)
            async with db.transaction():
                others = await db.fetch(
                    """SELECT digest FROM tokens WHERE family_id = $1 AND digest <> $2
                       FOR UPDATE NOWAIT""",
                    family,
                    presented,
                )
            assert len(others) == 3
        await revoking
    finally:
        await holder.close()
        await revoker.close()
    assert (
        await db.fetchval(
            "SELECT count(*) FROM tokens WHERE family_id = $1 AND revoked_at IS NULL", family
        )
        == 0
    )
