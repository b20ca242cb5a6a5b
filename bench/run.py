"""One bench run, in order: database, seed, servers, then each table size's loads."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

from authserver.db.migrate import migrate
from authserver.http.session import cookie_name
from bench import requests
from bench.config import INTROSPECT_PATH, ISSUER, TOKEN_PATH, Profile
from bench.cpu import NOISY_OTHER_CORES, CpuWatch, postmaster_pid
from bench.exchange import RESPONSE_PATTERN, exchange_requests
from bench.flows import FlowSpec, measure_flows
from bench.grow import TokenTable, settle
from bench.measure import Load
from bench.meta import postgres_meta, run_meta
from bench.paired import Side, paired
from bench.postgres import throwaway_database
from bench.report import Run
from bench.seed import FLOW_REDIRECT_URI, Seeded, seed_base, seed_refresh_tokens
from bench.servers import Server, running, wait_ready
from bench.wrk import WrkLoad, run_wrk

T = TypeVar("T")


# Lua patterns for the introspection answers; either server's JSON spacing matches.
_ACTIVE = '"active"%s*:%s*true'
_INACTIVE = '"active"%s*:%s*false'


@dataclass
class Outcome:
    meta: dict[str, Any]
    runs: list[Run] = field(default_factory=list)
    final_rss: int = 0


@dataclass(frozen=True)
class _Files:
    valid: Path
    unknown: Path
    forged: Path
    client_credentials: Path
    token_exchange: Path | None = None


class Bench:
    def __init__(self, profile: Profile, wrk: str, out: Path) -> None:
        self.profile = profile
        self.wrk = wrk
        self.out = out
        self.outcome = Outcome(meta=run_meta(profile, wrk))
        self._phases: dict[str, float] = {}
        self._cpu = CpuWatch([], None)  # until the servers and the cluster are known
        self._tag = ""  # names the current paired run's log files
        self.outcome.meta["phases_s"] = self._phases

    async def run(self) -> Outcome:
        begun = time.monotonic()
        await self._idle_check()
        async with throwaway_database() as db:
            conn = await asyncpg.connect(db.url)
            try:
                self.outcome.meta["postgres"] = await postgres_meta(conn, db.embedded)
                await self._timed("migrate", migrate(conn))
                seeded = await self._timed(
                    "seed",
                    seed_base(
                        conn,
                        valid_tokens=self.profile.valid_tokens,
                        sessions=self.profile.flow_sessions,
                    ),
                )
                files = self._files(seeded)
                exchange = self.out / "token-exchange.txt"
                files = replace(
                    files, token_exchange=await exchange_requests(conn, exchange, seeded)
                )
                table = TokenTable(conn)
                with (
                    running("floor", "bench.floor", db.url, self.out / "floor.log") as floor,
                    running(
                        "authserver", "authserver", db.url, self.out / "authserver.log"
                    ) as auth,
                ):
                    await wait_ready(floor, "/", None)
                    await wait_ready(auth, "/readyz", 200)
                    self._cpu = CpuWatch([floor.pid, auth.pid], postmaster_pid(db.data_dir))
                    for size in self.profile.sizes:
                        if size == self.profile.main_size:
                            refresh = await self._timed(
                                "seed refresh tokens", self._refresh_files(conn, seeded)
                            )
                        _say(f"growing the tokens table to {size:,} rows")
                        await self._timed(f"grow to {size:,}", table.grow_to(size))
                        rows = await table.rows()
                        if size == self.profile.main_size:
                            await self._step(floor, auth, files, rows, (refresh, seeded))
                            await settle(conn)  # the write loads left dead rows behind
                        else:
                            await self._step(floor, auth, files, rows, None)
                    self.outcome.final_rss = auth.rss_bytes()
                    self.outcome.meta["floor_final_rss_bytes"] = floor.rss_bytes()
            finally:
                await conn.close()
        self._phases["total"] = time.monotonic() - begun
        return self.outcome

    async def _idle_check(self) -> None:
        """Figures from a machine busy with something else are worth little: say so."""
        before = self._cpu.snapshot()
        await asyncio.sleep(1.0)
        other = self._cpu.use(before, self._cpu.snapshot(), os.getpid()).other
        self.outcome.meta["machine"]["other_cores_before_start"] = round(other, 3)
        if other > NOISY_OTHER_CORES:
            _say(
                f"WARNING: other programs used {other:.2f} cores before the start; "
                "the figures will be noisy"
            )

    async def _step(
        self,
        floor: Server,
        auth: Server,
        files: _Files,
        rows: int,
        main: tuple[list[Path], Seeded] | None,
    ) -> None:
        """One table size's paired runs: introspection always, every other load at the main
        size. Each pairs authserver with the floor's introspection of valid tokens."""
        valid = WrkLoad(INTROSPECT_PATH, files.valid, "random", 200, _ACTIVE)
        floor_side = self._wrk_side(floor, [valid])
        await self._paired("introspect-valid", rows, floor_side, self._wrk_side(auth, [valid]))
        if main is None:
            return
        refresh, seeded = main
        for name, file, pattern in (
            ("introspect-unknown", files.unknown, _INACTIVE),
            ("introspect-forged", files.forged, _INACTIVE),
        ):
            load = WrkLoad(INTROSPECT_PATH, file, "random", 200, pattern)
            await self._paired(name, rows, floor_side, self._wrk_side(auth, [load]))
        issue = WrkLoad(TOKEN_PATH, files.client_credentials, "random", 200, '"access_token"')
        await self._paired("client-credentials", rows, floor_side, self._wrk_side(auth, [issue]))
        if files.token_exchange is not None:
            trade = WrkLoad(TOKEN_PATH, files.token_exchange, "random", 200, RESPONSE_PATTERN)
            await self._paired("token-exchange", rows, floor_side, self._wrk_side(auth, [trade]))
        # Single-use tokens: one file for the warm-up, one per slice, each walked once.
        rotations = [WrkLoad(TOKEN_PATH, f, "walk", 200, '"refresh_token"') for f in refresh]
        await self._paired(
            "refresh-rotation", rows, floor_side, self._wrk_side(auth, rotations[1:], rotations[0])
        )
        await self._paired("authcode-pkce-flow", rows, floor_side, self._flow_side(auth, seeded))

    async def _paired(self, name: str, rows: int, floor: Side, auth: Side) -> None:
        pair = len(self.outcome.runs) // 2 + 1
        self._tag = f"{pair:02d}-{name}-{rows}"
        runs = await paired(name, rows, floor, auth, self.profile.slices, self._cpu, pair)
        self.outcome.runs.extend(runs)
        auth_run, floor_run = runs
        problems = "; ".join(auth_run.load.problems() + floor_run.load.problems())
        _say(
            f"  {name} at {rows:,} rows: {auth_run.load.rate:,.1f} {auth_run.unit} "
            f"(floor {floor_run.load.rate:,.1f} req/s), p99 "
            f"{auth_run.load.latency_ms.get('p99', 0):.1f} ms, other cores "
            f"{max(auth_run.cpu.other, floor_run.cpu.other):.2f}"
            + (f"  !! {problems}" if problems else "")
        )

    def _wrk_side(
        self, server: Server, loads: list[WrkLoad], warmup: WrkLoad | None = None
    ) -> Side:
        """wrk against ``server``: slice i sends loads[i] (or the only one)."""
        p = self.profile

        async def run(load: WrkLoad, seconds: float, log: str) -> Load:
            return await run_wrk(
                self.wrk,
                server.port,
                load,
                seconds=seconds,
                threads=p.threads,
                connections=p.connections,
                log=self.out / f"wrk-{self._tag}-{server.name}-{log}.txt",
            )

        async def warm() -> object:
            return await run(warmup or loads[0], p.warmup, "warmup") if p.warmup > 0 else None

        async def measure(index: int, on_go: Callable[[], object]) -> Load:
            on_go()
            return await run(loads[index % len(loads)], p.slice_seconds, str(index + 1))

        return Side(server, "req/s", warm, measure)

    def _flow_side(self, auth: Server, seeded: Seeded) -> Side:
        p = self.profile
        spec = FlowSpec(
            base_url=f"http://127.0.0.1:{auth.port}",
            warmup=0.0,
            duration=p.slice_seconds,
            workers=p.connections,
            client_id=seeded.flow_client.client_id,
            client_secret=seeded.flow_client.secret,
            redirect_uri=FLOW_REDIRECT_URI,
            cookie_name=cookie_name(ISSUER.startswith("https://")),
            cookies=list(seeded.session_cookies),
        )

        async def run(seconds: float, log: str, on_go: Callable[[], object]) -> Load:
            return await measure_flows(
                replace(spec, duration=seconds),
                self.out / f"flows-{self._tag}-{log}.json",
                self.out / f"flows-{self._tag}-{log}.txt",
                on_go,
            )

        async def warm() -> object:
            return await run(p.warmup, "warmup", lambda: None) if p.warmup > 0 else None

        async def measure(index: int, on_go: Callable[[], object]) -> Load:
            return await run(p.slice_seconds, str(index + 1), on_go)

        return Side(auth, "flows/s", warm, measure)

    def _files(self, seeded: Seeded) -> _Files:
        return _Files(
            valid=requests.introspection(
                self.out / "introspect-valid.txt", seeded, seeded.valid_tokens
            ),
            unknown=requests.introspection(
                self.out / "introspect-unknown.txt", seeded, seeded.unknown_tokens
            ),
            forged=requests.introspection(
                self.out / "introspect-forged.txt", seeded, seeded.forged_tokens
            ),
            client_credentials=requests.client_credentials(
                self.out / "client-credentials.txt", seeded.web_clients
            ),
        )

    async def _refresh_files(self, conn: asyncpg.Connection, seeded: Seeded) -> list[Path]:
        """Equal shares of the refresh tokens: the warm-up's, then one per slice. No token is
        in two files, so none is ever sent twice."""
        issued = await seed_refresh_tokens(conn, seeded.grants, self.profile.refresh_tokens)
        clients = {client.client_id: client for client in seeded.web_clients}
        parts = self.profile.slices + 1
        share = len(issued) // parts
        return [
            requests.refresh(
                self.out / f"refresh-{part}.txt", clients, issued[part * share : (part + 1) * share]
            )
            for part in range(parts)
        ]

    async def _timed(self, phase: str, work: Awaitable[T]) -> T:
        began = time.monotonic()
        _say(f"{phase}…")
        result = await work
        self._phases[phase] = round(time.monotonic() - began, 2)
        return result


def _say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)
