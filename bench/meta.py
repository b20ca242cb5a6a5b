"""What a result needs to be compared with another: code, machine, versions, settings."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import subprocess
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from bench.config import Profile
from bench.wrk import wrk_version


def run_meta(profile: Profile, wrk: str) -> dict[str, Any]:
    versions = {
        name: importlib.metadata.version(name)
        for name in ("starlette", "uvicorn", "asyncpg", "oauthlib", "httpx")
    }
    return {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "profile": asdict(profile),
        "git": _git(),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "wrk": wrk_version(wrk),
        "versions": versions,
        # uvicorn's "auto" picks these when they are installed (authserver leaves both on auto).
        "uvicorn_auto": {
            "loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
            "http": "httptools" if importlib.util.find_spec("httptools") else "h11",
        },
    }


def _git() -> dict[str, Any]:
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],  # noqa: S607 -- git from PATH, read-only
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],  # noqa: S607
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return {}
    return {"commit": commit, "uncommitted_changes": bool(dirty)}


async def postgres_meta(conn: asyncpg.Connection, embedded: bool) -> dict[str, Any]:
    rows = await conn.fetch(
        """SELECT name, setting, unit FROM pg_settings
           WHERE name IN ('shared_buffers', 'effective_cache_size', 'work_mem', 'fsync',
                          'synchronous_commit', 'max_connections', 'jit')"""
    )
    return {
        "version": await conn.fetchval("SHOW server_version"),
        "embedded": embedded,
        "settings": {r["name"]: f"{r['setting']}{r['unit'] or ''}" for r in rows},
    }
