"""One bench run, in order: database, seed, servers, then each table size's loads, and the
peers at the smallest size."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

from authserver.db.migrate import migrate
from authserver.http.session import cookie_name
from bench import device, requests
from bench.cache_fill import fill_cache
from bench.config import INTROSPECT_PATH, ISSUER, TOKEN_PATH, Profile
from bench.cpu import NOISY_OTHER_CORES, CpuWatch, postmaster_pid
from bench.exchange import RESPONSE_PATTERN, exchange_requests
from bench.flows import FlowSpec, measure_flows
from bench.grow import TokenTable, settle
from bench.measure import Load
from bench.meta import postgres_meta, run_meta
from bench.paired import Side, paired
from bench.peers import section
from bench.peers.install import install_peers
from bench.postgres import Database, another_database, throwaway_database
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
    final_rss: int = 0  # of the largest server process, after all runs
    cache_entries: int | None = None  # introspection cache entries then, if it was filled
    peer_runs: list[Run] = field(default_factory=list)  # each peer over authserver


@dataclass(frozen=True)
class _Files:
    valid: Path
    unknown: Path
    forged: Path
    client_credentials: Path
    token_exchange: Path | None = None
    device_polls: Path | None = None


class Bench:
    def __init__(
        self,
        profile: Profile,
        wrk: str,
        out: Path,
        *,
        peers: bool = False,
        workers: tuple[int, ...] = (1,),
    ) -> None:
        self.profile = profile
        self.wrk = wrk
        self.out = out
        self.peers = peers
        # authserver's worker counts: the first for every run, each for a comparison with the peers
        self.workers = workers
        self.outcome = Outcome(meta=run_meta(profile, wrk))
        self._phases: dict[str, float] = {}
        self._cpu = CpuWatch([], None)  # until the servers and the cluster are known
        self._tag = ""  # names the current paired run's log files
        self._pairs = 0
        self.outcome.meta["phases_s"] = self._phases
        self.outcome.meta["peers"] = {"on": peers, "authserver_workers": list(workers)}

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
                    files,
                    token_exchange=await exchange_requests(conn, exchange, seeded),
                    device_polls=await device.polling_requests(
                        conn, self.out / "device-polls.txt", seeded
                    ),
                )
                table = TokenTable(conn)
                with (
                    running("floor", "bench.floor", db.url, self.out / "floor.log") as floor,
                    running(
                        "authserver",
                        "authserver",
                        db.url,
                        self.out / "authserver.log",
                        self.workers[0],
                        self._settings(),
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
                        if self.peers and size == self.profile.sizes[0]:
                            # At the smallest table: the peers' own tables are as small.
                            await self._peer_section(db, auth, files, rows)
                    if self.profile.introspection_cache_entries != 0:
                        fill = await self._timed(
                            "fill the introspection cache",
                            fill_cache(conn, seeded, auth, self.wrk, self.out),
                        )
                        self.outcome.meta["cache_fill"] = asdict(fill)
                        self.outcome.cache_entries = fill.entries
                    # The largest process: the budget is per process (a worker), not their sum.
                    self.outcome.final_rss = max(auth.process_rss_bytes().values())
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
        floor_side = self.wrk_side(floor, [valid])
        await self.paired_run("introspect-valid", rows, floor_side, self.wrk_side(auth, [valid]))
        if main is None:
            return
        refresh, seeded = main
        for name, file, pattern in (
            ("introspect-unknown", files.unknown, _INACTIVE),
            ("introspect-forged", files.forged, _INACTIVE),
        ):
            load = WrkLoad(INTROSPECT_PATH, file, "random", 200, pattern)
            await self.paired_run(name, rows, floor_side, self.wrk_side(auth, [load]))
        issue = WrkLoad(TOKEN_PATH, files.client_credentials, "random", 200, '"access_token"')
        await self.paired_run("client-credentials", rows, floor_side, self.wrk_side(auth, [issue]))
        if files.token_exchange is not None:
            trade = WrkLoad(TOKEN_PATH, files.token_exchange, "random", 200, RESPONSE_PATTERN)
            await self.paired_run("token-exchange", rows, floor_side, self.wrk_side(auth, [trade]))
        if files.device_polls is not None:
            poll = WrkLoad(TOKEN_PATH, files.device_polls, "random", 400, device.RESPONSE_PATTERN)
            await self.paired_run("device-polling", rows, floor_side, self.wrk_side(auth, [poll]))
        # Single-use tokens: one file for the warm-up, one per slice, each walked once.
        rotations = [WrkLoad(TOKEN_PATH, f, "walk", 200, '"refresh_token"') for f in refresh]
        await self.paired_run(
            "refresh-rotation", rows, floor_side, self.wrk_side(auth, rotations[1:], rotations[0])
        )
        plain = self._flow_side(auth, seeded)
        await self.paired_run("authcode-pkce-flow", rows, floor_side, plain)
        # OpenID Connect's code flow on the same sessions, over the plain flow in its slices.
        await self.paired_run(
            "oidc-code-flow",
            rows,
            plain,
            self._flow_side(auth, seeded, openid=True),
            reference_name="authcode-pkce-flow",
        )

    async def _peer_section(self, db: Database, auth: Server, files: _Files, rows: int) -> None:
        """Install the peers in a throwaway directory, give them their own databases on the
        same cluster, and compare each with authserver at every worker count asked for."""
        workdir = Path(tempfile.mkdtemp(prefix="authserver-bench-peers-"))
        try:
            installed = await self._timed(
                "install peers", install_peers(workdir, self.out / "peers-install.log")
            )
            self.outcome.meta["peers"]["versions"] = installed.versions
            async with another_database(db) as dot_url, another_database(db) as oidc_url:
                dot = await self._timed(
                    "seed django-oauth-toolkit",
                    section.seed_dot(installed, dot_url, self.profile.valid_tokens, self.out),
                )
                databases = section.PeerDatabases(db.url, dot_url, oidc_url)
                auth_files = section.AuthFiles(files.valid, files.client_credentials)
                for workers in self.workers:
                    with ExitStack() as stack:
                        reference = auth
                        if workers != self.workers[0]:
                            reference = stack.enter_context(
                                running(
                                    f"authserver-{workers}w",
                                    "authserver",
                                    db.url,
                                    self.out / f"authserver-{workers}w.log",
                                    workers,
                                    self._settings(),
                                )
                            )
                            await wait_ready(reference, "/readyz", 200)
                        with self.watching(reference):
                            await self._timed(
                                f"peers against authserver with {workers} worker(s)",
                                section.compare(
                                    self, reference, rows, auth_files, installed, databases, dot
                                ),
                            )
                            if reference is not auth:
                                # What the extra workers give, in the same slices (issue 15
                                # asks 1.6x for as many workers as CPUs).
                                valid = WrkLoad(
                                    INTROSPECT_PATH, files.valid, "random", 200, _ACTIVE
                                )
                                await self.paired_run(
                                    "introspect-valid",
                                    rows,
                                    self.wrk_side(auth, [valid]),
                                    self.wrk_side(reference, [valid]),
                                    peers=True,
                                )
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    @contextmanager
    def watching(self, server: Server) -> Iterator[None]:
        """Account for ``server``'s CPU (a server started after the others) while it runs."""
        before = self._cpu
        self._cpu = before.watching(server.pid)
        try:
            yield
        finally:
            self._cpu = before

    async def paired_run(
        self,
        name: str,
        rows: int,
        reference: Side,
        measured: Side,
        *,
        peers: bool = False,
        reference_name: str | None = None,
    ) -> None:
        """One paired run, kept in the main table or (``peers``) the peers' table."""
        self._pairs += 1
        pair = self._pairs
        self._tag = f"{pair:02d}-{name}-{rows}"
        runs = await paired(
            name,
            rows,
            reference,
            measured,
            self.profile.slices,
            self._cpu,
            pair,
            reference_name,
        )
        (self.outcome.peer_runs if peers else self.outcome.runs).extend(runs)
        run, ref = runs
        problems = "; ".join(run.load.problems() + ref.load.problems())
        _say(
            f"  {run.server} {name} at {rows:,} rows: {run.load.rate:,.1f} {run.unit} "
            f"({ref.server}{f' {reference_name}' if reference_name else ''} "
            f"{ref.load.rate:,.1f} {ref.unit}), p99 "
            f"{run.load.latency_ms.get('p99', 0):.1f} ms, other cores "
            f"{max(run.cpu.other, ref.cpu.other):.2f}" + (f"  !! {problems}" if problems else "")
        )

    def wrk_side(self, server: Server, loads: list[WrkLoad], warmup: WrkLoad | None = None) -> Side:
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

    def _flow_side(self, auth: Server, seeded: Seeded, *, openid: bool = False) -> Side:
        p = self.profile
        kind = "oidc" if openid else "plain"
        spec = FlowSpec(
            base_url=f"http://127.0.0.1:{auth.port}",
            warmup=0.0,
            duration=p.slice_seconds,
            workers=p.flow_workers,
            client_id=seeded.flow_client.client_id,
            client_secret=seeded.flow_client.secret,
            redirect_uri=FLOW_REDIRECT_URI,
            cookie_name=cookie_name(ISSUER.startswith("https://")),
            cookies=list(seeded.session_cookies),
            scope="openid read write" if openid else "read write",
            nonce=openid,
        )

        async def run(seconds: float, log: str, on_go: Callable[[], object]) -> Load:
            return await measure_flows(
                replace(spec, duration=seconds),
                self.out / f"flows-{self._tag}-{kind}-{log}.json",
                self.out / f"flows-{self._tag}-{kind}-{log}.txt",
                on_go,
            )

        async def warm() -> object:
            return await run(p.warmup, "warmup", lambda: None) if p.warmup > 0 else None

        async def measure(index: int, on_go: Callable[[], object]) -> Load:
            return await run(p.slice_seconds, str(index + 1), on_go)

        return Side(auth, "flows/s", warm, measure)

    def _settings(self) -> dict[str, str]:
        """authserver settings the options change (--introspection-cache)."""
        entries = self.profile.introspection_cache_entries
        return {} if entries is None else {"AUTHSERVER_INTROSPECTION_CACHE_ENTRIES": str(entries)}

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
