"""The servers under load, each a subprocess on loopback: authserver, the floor and the peers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import httpx

from bench.config import ADMIN_TOKEN, ISSUER, SERVER_KEY
from bench.cpu import tree_pids
from bench.measure import rss_bytes

STARTUP_TIMEOUT = 60.0  # seconds
STOP_TIMEOUT = 30.0  # authserver drains for up to 20 s after SIGTERM


class ServerError(Exception):
    pass


@dataclass(frozen=True)
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    admin_address: str | None = None  # authserver's admin listener, host:port

    @property
    def pid(self) -> int:
        return self.process.pid

    def process_rss_bytes(self) -> dict[int, int]:
        """Resident memory now of each of its processes (the server and its workers); a server
        that died mid-run fails the bench here."""
        if self.process.poll() is not None:
            raise ServerError(f"{self.name} exited with {self.process.returncode}; see {self.log}")
        sizes = {}
        for pid in tree_pids(self.process.pid):
            # A worker that exited meanwhile, or a zombie, has nothing resident.
            with contextlib.suppress(OSError, RuntimeError):
                sizes[pid] = rss_bytes(pid)
        return sizes

    def rss_bytes(self) -> int:
        """Resident memory now, of the process and its workers (pages they share are counted
        in each)."""
        return sum(self.process_rss_bytes().values())


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def production_environ(
    database_url: str,
    public_port: int,
    workers: int = 1,
    settings: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """authserver's production settings on loopback: INFO logs, default argon2 and pool, no
    migration or janitor at start (the bench migrated and seeded; a janitor would delete the
    filler rows mid-run), ``workers`` server processes (an authserver that has the setting
    would otherwise start one per CPU; one that lacks it ignores it). Any AUTHSERVER_* of the
    caller's shell is dropped."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AUTHSERVER_")}
    env.update(
        {
            "AUTHSERVER_DATABASE_URL": database_url,
            "AUTHSERVER_ISSUER": ISSUER,
            "AUTHSERVER_SECRET_KEYS": SERVER_KEY,
            "AUTHSERVER_ADMIN_TOKENS": ADMIN_TOKEN,
            "AUTHSERVER_PUBLIC_ADDR": f"127.0.0.1:{public_port}",
            "AUTHSERVER_ADMIN_ADDR": f"127.0.0.1:{free_port()}",
            "AUTHSERVER_LOG_LEVEL": "INFO",
            "AUTHSERVER_MIGRATE_ON_START": "false",
            "AUTHSERVER_JANITOR_INTERVAL": "0",
            "AUTHSERVER_WORKERS": str(workers),
            **(settings or {}),
        }
    )
    return env


@contextmanager
def running(
    name: str,
    module: str,
    database_url: str,
    log: Path,
    workers: int = 1,
    settings: Mapping[str, str] | None = None,
) -> Iterator[Server]:
    """``python -m <module> [serve]`` with the production environment (and ``settings``, for
    the options that change one); stopped on exit. ``--workers`` goes to ``authserver serve``
    only when more than one is asked for: the bench runs on an authserver without that option,
    and fails at start if more are asked of one."""
    port = free_port()
    argv = [sys.executable, "-m", module]
    if module == "authserver":
        argv += ["serve", *(["--workers", str(workers)] if workers != 1 else [])]
    env = production_environ(database_url, port, workers, settings)
    with running_command(name, argv, env, port, log) as server:
        yield replace(server, admin_address=env["AUTHSERVER_ADMIN_ADDR"])


@contextmanager
def running_command(
    name: str, argv: list[str], env: dict[str, str], port: int, log: Path, cwd: Path | None = None
) -> Iterator[Server]:
    """Any server command listening on 127.0.0.1:``port``; stopped (SIGTERM) on exit."""
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 -- commands the bench builds itself
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C reaches the bench, which stops it in order
        )
    try:
        yield Server(name, process, port, log)
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        # Its own session (start_new_session): the group is the server and its workers.
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


async def wait_ready(server: Server, path: str, want: int | None) -> None:
    """Until GET ``path`` answers (with status ``want``, if given). uvicorn runs the lifespan,
    which opens the pool, before it listens, and the peers seed before they listen: an answer
    means ready."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
        while True:
            if server.process.poll() is not None:
                raise ServerError(f"{server.name} exited at start-up; see {server.log}")
            try:
                response = await client.get(path, timeout=2)
                if want is None or response.status_code == want:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise ServerError(f"{server.name} not ready after {STARTUP_TIMEOUT:.0f} s")
            await asyncio.sleep(0.2)
