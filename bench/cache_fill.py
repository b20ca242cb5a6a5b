"""authserver's memory with a full introspection cache: 100,000 more live tokens introspected once
each (every one a miss that the cache keeps), then each server process's RSS (issue 15: at most
100 MB per worker with a 100,000-entry cache)."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx

from bench import requests
from bench.config import ADMIN_TOKEN, INTROSPECT_PATH
from bench.seed import Seeded, access_tokens
from bench.servers import Server
from bench.wrk import WrkLoad, run_wrk

CACHED_TOKENS = 100_000
# wrk runs this long even once every token was introspected (about 17 s here, at the full
# path's rate: every one is a miss); a slower machine leaves some out, and entries says so.
_FILL_SECONDS = 40.0
_ENTRIES = re.compile(r"^authserver_introspection_cache_entries(?:\{[^}]*\})? (\S+)$", re.M)


@dataclass(frozen=True)
class CacheFill:
    tokens: int  # introspected, each once
    active: int  # answered active (each one a cache entry, unless evicted)
    entries: int  # what the server's metrics say its cache holds (summed over workers)
    rss_bytes: dict[int, int]  # per process, after the fill

    @property
    def largest_rss(self) -> int:
        return max(self.rss_bytes.values())


async def fill_cache(
    conn: asyncpg.Connection, seeded: Seeded, auth: Server, wrk: str, out: Path
) -> CacheFill:
    rng = random.Random(20261203)  # noqa: S311 -- which grant a token belongs to
    tokens = await access_tokens(conn, rng, seeded.grants, seeded.web_clients, CACHED_TOKENS)
    path = requests.introspection(out / "cache-fill.txt", seeded, tokens)
    load = WrkLoad(INTROSPECT_PATH, path, "walk", 200, '"active"%s*:%s*true')
    result = await run_wrk(
        wrk,
        auth.port,
        load,
        seconds=_FILL_SECONDS,
        threads=2,
        connections=16,
        log=out / "cache-fill.wrk.log",
    )
    return CacheFill(
        tokens=len(tokens),
        active=result.ok,
        entries=await _entries(auth),
        rss_bytes=auth.process_rss_bytes(),
    )


async def _entries(auth: Server) -> int:
    if auth.admin_address is None:
        return 0
    async with httpx.AsyncClient(timeout=10.0) as http:
        response = await http.get(
            f"http://{auth.admin_address}/metrics",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
    return int(sum(float(value) for value in _ENTRIES.findall(response.text)))
