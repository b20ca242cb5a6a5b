"""``authserver serve`` as a real process on free loopback ports, for tests that need real HTTP.

The process is always stopped when the block ends (SIGINT, then SIGKILL after a bounded wait),
and everything it wrote to stdout and stderr is kept in one file the test can read afterwards.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO

import httpx

from tests.conftest import server_environ

START_TIMEOUT = 30.0  # seconds until /readyz must answer 200 on both listeners
STOP_TIMEOUT = 15.0


@dataclass(frozen=True)
class LiveServer:
    public_url: str
    admin_url: str
    log_path: Path
    # The running child, for tests that signal it themselves (it is still stopped on the way out).
    process: asyncio.subprocess.Process | None = field(default=None, compare=False, repr=False)

    def output(self) -> str:
        """Everything the process wrote so far, stdout and stderr interleaved."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _environ(
    database_url: str, public: int, admin: int, overrides: dict[str, str]
) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AUTHSERVER_")}
    env.update(
        server_environ(
            database_url,
            public_addr=f"127.0.0.1:{public}",
            admin_addr=f"127.0.0.1:{admin}",
            **overrides,
        )
    )
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _open_log(path: Path) -> BinaryIO:
    return path.open("wb")


async def _wait_ready(process: asyncio.subprocess.Process, server: LiveServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    async with httpx.AsyncClient(timeout=2.0) as http:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise RuntimeError(f"the server exited early:\n{server.output()}")
            with suppress(httpx.HTTPError):
                public = await http.get(server.public_url + "/readyz")
                admin = await http.get(server.admin_url + "/readyz")
                if public.status_code == admin.status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise TimeoutError(f"the server was not ready within {START_TIMEOUT} s:\n{server.output()}")


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
        except TimeoutError:
            with suppress(ProcessLookupError):
                process.kill()
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT)


@asynccontextmanager
async def live_server(
    database_url: str, log_path: Path, **overrides: str
) -> AsyncIterator[LiveServer]:
    """Run ``python -m authserver serve`` against ``database_url`` until the block ends."""
    public, admin = free_port(), free_port()
    server = LiveServer(f"http://127.0.0.1:{public}", f"http://127.0.0.1:{admin}", log_path)
    log = _open_log(log_path)
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "authserver",
            "serve",
            env=_environ(database_url, public, admin, overrides),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
        server = replace(server, process=process)
        try:
            await _wait_ready(process, server)
            yield server
        finally:
            await _stop(process)
    finally:
        log.close()
