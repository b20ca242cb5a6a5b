"""The built wheel: what it contains, and that an installed copy finds its data files.

The wheel is built once per module and installed with ``pip --target`` into a directory of its
own; the checks then run in child interpreters whose working directory is outside the
repository, so nothing can be found relative to the checkout by accident.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from authserver.db.queries import load_queries
from tests import conftest

REPO = Path(__file__).resolve().parent.parent
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-cache-dir"]
TIMEOUT = 180.0  # seconds, for building, installing and each child interpreter

# Run in the installed copy: where it was imported from, where its data files are, its queries.
PROBE = """
import json
import authserver
from authserver.files import data_dir
from authserver.db.queries import load_queries

print(json.dumps({
    "module": authserver.__file__,
    "data_dirs": {name: str(data_dir(name)) for name in ("sql", "templates", "openapi")},
    "queries": sorted(load_queries()),
}))
"""


def run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=TIMEOUT, check=False, **kwargs
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def installed_environ(site: Path, **settings: str) -> dict[str, str]:
    """This environment without AUTHSERVER_* variables, importing from ``site`` first."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AUTHSERVER_")}
    env["PYTHONPATH"] = str(site)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(settings)
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from the working tree."""
    out = tmp_path_factory.mktemp("wheel")
    run([*PIP, "wheel", "--no-deps", "--no-build-isolation", "-w", str(out), str(REPO)])
    (built,) = out.glob("authserver-*.whl")
    return built


@pytest.fixture(scope="module")
def wheel_names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


@pytest.fixture(scope="module")
def site(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel installed, without dependencies, into a directory of its own."""
    target = tmp_path_factory.mktemp("site")
    run([*PIP, "install", "--no-deps", "--no-compile", "--target", str(target), str(wheel)])
    return target


@pytest.fixture(scope="module")
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working directory that is not the repository and holds no data files."""
    return tmp_path_factory.mktemp("elsewhere")


@pytest.fixture(scope="module")
def probe(site: Path, outside: Path) -> dict[str, Any]:
    """What the installed copy reports about itself."""
    done = run([sys.executable, "-c", PROBE], cwd=outside, env=installed_environ(site))
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def test_wheel_contains_templates(wheel_names: list[str]) -> None:
    """The wheel carries the HTML templates inside the package."""
    assert "authserver/templates/base.html" in wheel_names


def test_wheel_contains_openapi(wheel_names: list[str]) -> None:
    """The wheel carries the admin API's OpenAPI document inside the package."""
    assert "authserver/openapi/admin.yaml" in wheel_names


def test_wheel_has_no_tests_or_venv(wheel_names: list[str]) -> None:
    """Neither the tests nor the virtualenv end up in the wheel."""
    assert not [name for name in wheel_names if name.startswith("tests/")]
    assert not [name for name in wheel_names if "/tests/" in name or ".venv" in name]


def test_imported_from_target(probe: dict[str, Any], site: Path) -> None:
    """With the target directory on the path, authserver is imported from the installed copy."""
    assert Path(probe["module"]) == site / "authserver" / "__init__.py"


@pytest.mark.parametrize("name", ["sql", "templates", "openapi"])
def test_data_dir_inside_package(probe: dict[str, Any], site: Path, name: str) -> None:
    """The installed copy finds each data directory inside its own package."""
    assert Path(probe["data_dirs"][name]) == site / "authserver" / name


def test_installed_copy_loads_all_queries(probe: dict[str, Any]) -> None:
    """The installed copy loads the same named queries as the source tree."""
    assert probe["queries"]
    assert probe["queries"] == sorted(load_queries())


def test_installed_copy_migrates(site: Path, outside: Path, empty_database_url: str) -> None:
    """``python -m authserver migrate`` from the installed copy applies its migrations."""
    done = run(
        [sys.executable, "-m", "authserver", "migrate"],
        cwd=outside,
        env=installed_environ(site, **conftest.server_environ(empty_database_url)),
    )
    assert done.stdout.startswith("applied: 0001_init")
