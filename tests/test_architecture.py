"""The package's layers (docs/architecture.md): each module imports only its own layer and the
ones below, nothing forms a circle, and the protocol core knows nothing of HTTP frameworks."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "authserver"

# Lowest first. A module belongs to the layer of the longest prefix that names it.
LAYERS: tuple[tuple[str, ...], ...] = (
    (  # base: values, rules on values, settings
        "authserver.errors",
        "authserver.answer",
        "authserver.files",
        "authserver.cpus",
        "authserver.periodic",
        "authserver.config",
        "authserver.models",
        "authserver.scopes",
        "authserver.validation",
        "authserver.serialize",
    ),
    ("authserver.logs", "authserver.metrics", "authserver.security", "authserver.db"),
    (  # the protocol core and the domain
        "authserver.oauth",
        "authserver.oidc",  # OpenID Connect's signing keys and claims
        "authserver.signin",
        "authserver.users",
        "authserver.clients",
        "authserver.janitor",
        "authserver.audit",
        "authserver.phraseanet",  # the Phraseanet import: reads MySQL, writes through the store
    ),
    ("authserver.http",),  # the HTTP edge
    ("authserver.services",),  # the composition root
    (
        "authserver.serve",
        "authserver.workers",
        "authserver.cli",
        "authserver.manage",  # the users, clients and keys commands
        "authserver.embedded",
        "authserver.__main__",
    ),
)
EDGE = 3  # layers below this one import no web framework
FRAMEWORKS = ("starlette", "uvicorn", "httpx", "jinja2", "itsdangerous")
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> int:
    matches = [
        (len(prefix), index)
        for index, prefixes in enumerate(LAYERS)
        for prefix in prefixes
        if module == prefix or module.startswith(prefix + ".")
    ]
    if not matches:
        raise AssertionError(f"{module} belongs to no layer: add it to LAYERS")
    return max(matches)[1]


def imports(module: str) -> Iterator[str]:
    """Every module ``module`` imports, TYPE_CHECKING blocks included."""
    tree = ast.parse(modules()[module].read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            yield node.module
            for alias in node.names:  # from authserver import clients: the module itself
                if f"{node.module}.{alias.name}" in modules():
                    yield f"{node.module}.{alias.name}"


def internal(module: str) -> set[str]:
    return {name for name in imports(module) if name in modules() and name != "authserver"}


@pytest.mark.parametrize("module", sorted(modules()))
def test_imports_only_its_layer_and_below(module: str) -> None:
    """No module imports from a layer above its own."""
    if module == "authserver":
        return
    upward = sorted(name for name in internal(module) if layer(name) > layer(module))
    assert upward == [], f"{module} (layer {layer(module)}) imports {upward}"


@pytest.mark.parametrize(
    "module", sorted(name for name in modules() if name != "authserver" and layer(name) < EDGE)
)
def test_core_imports_no_web_framework(module: str) -> None:
    """Below the HTTP edge nothing imports Starlette (or another web piece)."""
    found = sorted(name for name in imports(module) if name.split(".")[0] in FRAMEWORKS)
    assert found == [], f"{module} imports {found}"


def test_no_import_circle() -> None:
    """The import graph of the package has no cycle, however long."""
    graph = {module: internal(module) for module in modules()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for name in sorted(graph[module]):
            if state.get(name) == 1:
                raise AssertionError(" -> ".join([*path[path.index(name) :], name]))
            if name not in state:
                visit(name, [*path, name])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_layer_test_sees_violations() -> None:
    """The layer check is not vacuous: the root is above the edge, which is above the core."""
    assert layer("authserver.services") > layer("authserver.http.apps") > layer("authserver.oauth")
    assert "authserver.http.apps" in internal("authserver.services")


@pytest.mark.parametrize("module", sorted(modules()))
def test_modules_stay_small(module: str) -> None:
    """No module grows past a few hundred lines: split it by what it owns."""
    lines = len(modules()[module].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines"
