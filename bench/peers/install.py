"""Installing the peers into a throwaway directory: a virtual environment for
django-oauth-toolkit, an npm install for oidc-provider. Versions are pinned here and in
node/package-lock.json, so two runs measure the same code."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO

PEERS_DIR = Path(__file__).resolve().parent
DOT_GLUE = PEERS_DIR / "dot"
NODE_GLUE = PEERS_DIR / "node"
NODE_FILES = ("package.json", "package-lock.json", "server.mjs", "pg_adapter.mjs")

DOT_REQUIREMENTS = (
    "django-oauth-toolkit==3.4.1",
    "Django==5.2.19",
    "gunicorn==27.0.1",
    "psycopg[binary]==3.3.9",
)


class PeerError(Exception):
    pass


@dataclass(frozen=True)
class Installed:
    dot_python: Path  # the virtual environment's interpreter
    dot_gunicorn: Path
    node: str  # the node binary
    node_dir: Path  # server.mjs with its node_modules
    versions: dict[str, str]  # for results.json: what was measured


async def install_peers(workdir: Path, log: Path) -> Installed:
    """Both peers under ``workdir`` (the caller deletes it); what each command printed goes
    to ``log``."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise PeerError("node and npm are needed for the oidc-provider peer (or use --no-peers)")
    venv = workdir / "dot-venv"
    node_dir = workdir / "oidc-provider"
    node_dir.mkdir(parents=True)
    for name in NODE_FILES:
        shutil.copy2(NODE_GLUE / name, node_dir / name)
    with log.open("wb") as out:
        await _run([sys.executable, "-m", "venv", str(venv)], out)
        await _run([str(venv / "bin" / "pip"), "install", "--quiet", *DOT_REQUIREMENTS], out)
        # The lock file fixes every transitive version; no install scripts are needed.
        await _run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"], out, node_dir)
    return Installed(
        dot_python=venv / "bin" / "python",
        dot_gunicorn=venv / "bin" / "gunicorn",
        node=node,
        node_dir=node_dir,
        versions=await _versions(node, node_dir),
    )


async def _versions(node: str, node_dir: Path) -> dict[str, str]:
    found = dict(requirement.split("==") for requirement in DOT_REQUIREMENTS)
    proc = await asyncio.create_subprocess_exec(node, "--version", stdout=asyncio.subprocess.PIPE)
    found["node"] = (await proc.communicate())[0].decode().strip()
    for package in ("oidc-provider", "pg"):
        manifest = node_dir / "node_modules" / package / "package.json"
        found[package] = json.loads(manifest.read_text())["version"]
    return found


async def _run(argv: list[str], out: IO[bytes], cwd: Path | None = None) -> None:
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out
    )
    if await proc.wait() != 0:
        raise PeerError(f"{' '.join(argv[:3])} … failed with {proc.returncode}; see {out.name}")
