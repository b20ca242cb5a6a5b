"""wrk: installing it where missing, and running one fixed-duration load with post.lua."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.config import LUA_SCRIPT
from bench.measure import Load, from_quantiles

_RESULT_PREFIX = "BENCH_RESULT "


class WrkError(Exception):
    pass


def ensure_wrk() -> str:
    """The wrk binary, installed from Debian's packages if it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        raise WrkError("wrk is not installed; install it (Debian: apt-get install -y wrk)")
    print("bench: wrk is missing; installing it with apt-get", file=sys.stderr, flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([apt, "update"], check=True, env=env)  # noqa: S603 -- fixed arguments
    subprocess.run([apt, "install", "-y", "wrk"], check=True, env=env)  # noqa: S603
    found = shutil.which("wrk")
    if found is None:
        raise WrkError("apt-get installed wrk but it is not on PATH")
    return found


def wrk_version(binary: str) -> str:
    # wrk prints its version in the usage text and exits 1: that is not an error here.
    done = subprocess.run(  # noqa: S603 -- fixed arguments
        [binary, "--version"], capture_output=True, text=True, check=False
    )
    return (done.stdout or done.stderr).splitlines()[0].strip()


@dataclass(frozen=True)
class WrkLoad:
    """One wrk invocation: where to send what, and what every answer must look like."""

    path: str
    requests_file: Path
    mode: str  # "random" or "walk" (see post.lua)
    expect_status: int
    expect_pattern: str  # a Lua pattern


async def run_wrk(
    binary: str,
    port: int,
    load: WrkLoad,
    *,
    seconds: float,
    threads: int,
    connections: int,
    log: Path,
) -> Load:
    """Run wrk against 127.0.0.1:port for ``seconds``; its full output goes to ``log``."""
    args = [
        binary,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",  # a slow answer is a slow answer, not a silently dropped sample
        "--latency",
        "-s",
        str(LUA_SCRIPT),
        f"http://127.0.0.1:{port}",
        "--",
        load.path,
        str(load.requests_file),
        load.mode,
        str(load.expect_status),
        load.expect_pattern,
        str(threads),
    ]
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=seconds + 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    out, err = stdout.decode(errors="replace"), stderr.decode(errors="replace")
    await asyncio.to_thread(log.write_text, f"$ {' '.join(args)}\n{out}\n--- stderr\n{err}")
    if proc.returncode != 0:
        raise WrkError(f"wrk exited with {proc.returncode}; see {log}")
    return _parse(out, log)


def _parse(out: str, log: Path) -> Load:
    lines = [line for line in out.splitlines() if line.startswith(_RESULT_PREFIX)]
    if not lines:
        raise WrkError(f"wrk printed no result line; see {log}")
    data = json.loads(lines[-1][len(_RESULT_PREFIX) :])
    errors = dict(data["errors"])
    errors.pop("status", None)  # statuses are judged by post.lua against the expected one
    latency = {name: value / 1000 for name, value in data["latency_us"].items()}
    return Load(
        completed=int(data["requests"]),
        seconds=data["duration_us"] / 1e6,
        ok=int(data["ok"]),
        unexpected=int(data["unexpected"]),
        exhausted=int(data["exhausted"]),
        socket_errors={name: int(count) for name, count in errors.items()},
        latency_ms=latency,
        points=from_quantiles(
            [(p, us / 1000) for p, us in data["quantiles_us"]], int(data["requests"])
        ),
    )
