"""authserver against its peers, on the same PostgreSQL and the same loads: the raw ASGI ceiling
of the HTTP stack, django-oauth-toolkit under gunicorn, and panva's oidc-provider on node.

Each peer is started alone, measured in slices alternated with authserver's (bench.paired,
authserver being the reference), and stopped before the next one starts. Every figure is then
a ratio to authserver's in the same slices.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench import requests
from bench.config import INTROSPECT_PATH, TOKEN_PATH
from bench.peers.install import DOT_GLUE, Installed, PeerError
from bench.postgres import libpq_environ
from bench.seed import ClientCreds
from bench.servers import Server, free_port, production_environ, running_command, wait_ready
from bench.wrk import WrkLoad

if TYPE_CHECKING:
    from bench.run import Bench

ACTIVE = '"active"%s*:%s*true'  # a Lua pattern; any server's JSON spacing matches
ISSUED = '"access_token"'
# oidc-provider's memory adapter is an LRU of 1,000 entries: more tokens would evict the first.
MEMORY_TOKENS = 900
DOT_WORKERS = (1, 4)


@dataclass(frozen=True)
class PeerSeed:
    """What a peer's loads need: its clients' credentials and its live access tokens."""

    introspector: ClientCreds
    clients: tuple[ClientCreds, ...]
    tokens: tuple[str, ...]

    @classmethod
    def read(cls, path: Path) -> PeerSeed:
        data = json.loads(path.read_text())

        def creds(item: dict[str, str]) -> ClientCreds:
            return ClientCreds(item["client_id"], item["secret"])

        return cls(
            introspector=creds(data["introspector"]),
            clients=tuple(creds(item) for item in data["clients"]),
            tokens=tuple(data["tokens"]),
        )


@dataclass(frozen=True)
class AuthFiles:
    """authserver's own request files for the two loads every peer is compared on."""

    introspect: Path
    client_credentials: Path


@dataclass(frozen=True)
class PeerDatabases:
    authserver: str  # the URLs of authserver's database and, on its cluster, the peers' own
    dot: str
    oidc: str


async def seed_dot(installed: Installed, url: str, tokens: int, out: Path) -> PeerSeed:
    """Migrate DOT's database and seed it (dotpeer.seed, in DOT's virtual environment)."""
    seed_file = out / "dot-seed.json"
    log = out / "dot-seed.log"
    with log.open("wb") as output:
        proc = await asyncio.create_subprocess_exec(
            str(installed.dot_python),
            "-m",
            "dotpeer.seed",
            str(seed_file),
            str(tokens),
            env=_dot_environ(url),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=output,
            stderr=output,
        )
        if await proc.wait() != 0:
            raise PeerError(f"seeding django-oauth-toolkit failed; see {log}")
    return PeerSeed.read(seed_file)


async def compare(
    bench: Bench,
    auth: Server,
    rows: int,
    files: AuthFiles,
    installed: Installed,
    databases: PeerDatabases,
    dot: PeerSeed,
) -> None:
    """Every peer's paired runs against ``auth``, one peer server at a time."""
    out, tokens = bench.out, bench.profile.valid_tokens
    introspect = WrkLoad(INTROSPECT_PATH, files.introspect, "random", 200, ACTIVE)
    issue = WrkLoad(TOKEN_PATH, files.client_credentials, "random", 200, ISSUED)
    reference = {
        "introspect-valid": bench.wrk_side(auth, [introspect]),
        "client-credentials": bench.wrk_side(auth, [issue]),
    }

    async def measure(peer: Server, loads: dict[str, WrkLoad]) -> None:
        with bench.watching(peer):
            for name, load in loads.items():
                await bench.paired_run(
                    name, rows, reference[name], bench.wrk_side(peer, [load]), peers=True
                )

    with _ceiling(databases.authserver, out) as ceiling:
        await wait_ready(ceiling, "/", None)
        # Its answer is fixed: it gets authserver's own introspection requests.
        await measure(ceiling, {"introspect-valid": introspect})

    for workers in DOT_WORKERS:
        with _dot(installed, databases.dot, workers, out) as server:
            await wait_ready(server, "/o/introspect/", None)
            await measure(server, _loads(server.name, dot, "/o/introspect/", "/o/token/", out))

    for adapter in ("pg", "memory"):
        count = tokens if adapter == "pg" else min(tokens, MEMORY_TOKENS)
        seed_file = out / f"oidc-provider-{adapter}-seed.json"
        with _oidc_provider(installed, databases.oidc, adapter, count, seed_file, out) as server:
            await wait_ready(server, "/.well-known/openid-configuration", 200)
            seed = PeerSeed.read(seed_file)
            await measure(
                server,
                _loads(
                    server.name,
                    seed,
                    "/token/introspection",
                    "/token",
                    out,
                    # Its client-credentials tokens carry no scope unless one is asked for.
                    scope="read write",
                ),
            )


def _loads(
    name: str,
    seed: PeerSeed,
    introspect_path: str,
    token_path: str,
    out: Path,
    scope: str | None = None,
) -> dict[str, WrkLoad]:
    basic = seed.introspector.basic()
    introspect = requests.write_lines(
        out / f"{name}-introspect-valid.txt", ((basic, {"token": t}) for t in seed.tokens)
    )
    form = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
    issue = requests.write_lines(
        out / f"{name}-client-credentials.txt", ((c.basic(), form) for c in seed.clients)
    )
    return {
        "introspect-valid": WrkLoad(introspect_path, introspect, "random", 200, ACTIVE),
        "client-credentials": WrkLoad(token_path, issue, "random", 200, ISSUED),
    }


@contextmanager
def _ceiling(url: str, out: Path) -> Iterator[Server]:
    port = free_port()
    # authserver's settings (port aside), so the listener is configured as authserver's is.
    env = production_environ(url, port)
    argv = [sys.executable, "-m", "bench.ceiling"]
    with running_command("asgi-ceiling", argv, env, port, out / "asgi-ceiling.log") as server:
        yield server


def _dot_environ(url: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env.update(libpq_environ(url))
    env["PYTHONPATH"] = str(DOT_GLUE)
    env["DJANGO_SETTINGS_MODULE"] = "dotpeer.settings"
    return env


@contextmanager
def _dot(installed: Installed, url: str, workers: int, out: Path) -> Iterator[Server]:
    port = free_port()
    name = f"django-oauth-toolkit-{workers}w"
    argv = [
        str(installed.dot_gunicorn),
        "--workers",
        str(workers),
        "--worker-class",
        "sync",
        "--bind",
        f"127.0.0.1:{port}",
        "--access-logfile",
        "-",  # one line per request, as authserver's access log
        "--no-control-socket",  # gunicorn's default socket is a fixed path in $HOME
        "dotpeer.wsgi",
    ]
    with running_command(name, argv, _dot_environ(url), port, out / f"{name}.log") as server:
        yield server


@contextmanager
def _oidc_provider(
    installed: Installed, url: str, adapter: str, tokens: int, seed_file: Path, out: Path
) -> Iterator[Server]:
    port = free_port()
    name = f"oidc-provider-{adapter}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env.update(libpq_environ(url))
    env.update(
        {
            "NODE_ENV": "production",
            "PORT": str(port),
            "ADAPTER": adapter,
            "TOKENS": str(tokens),
            "SEED_OUT": str(seed_file),
        }
    )
    argv = [installed.node, "server.mjs"]
    log = out / f"{name}.log"
    with running_command(name, argv, env, port, log, cwd=installed.node_dir) as server:
        yield server
