"""The named queries of ``sql/queries/*.sql``, loaded once.

Each query starts with ``-- name: <name>`` and a one-line description comment; the SQL runs to
the next name. Keeping SQL in files lets it be read, reviewed and explained as SQL.

The text comes from files that ship with the package, never from a request: it is typed
``LiteralString`` so that no caller can pass a string built from data where a query goes.
"""

from __future__ import annotations

import re
from functools import cache
from typing import LiteralString, cast

from authserver.files import data_dir

Queries = dict[str, LiteralString]

_NAME = re.compile(r"^-- name: ([a-z_]+)\s*$", re.MULTILINE)


def parse_queries(text: str) -> Queries:
    """Split one file's text into ``{name: sql}``; a repeated name is an error."""
    parts = _NAME.split(text)
    queries: Queries = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice")
        sql = "\n".join(line for line in body.strip().splitlines() if not line.startswith("--"))
        if not sql.strip():
            raise ValueError(f"query {name!r} has no SQL")
        # Our own files' text: the one place a str becomes a LiteralString. (mypy reads
        # LiteralString as str and calls the cast redundant; checkers that don't need it.)
        queries[name] = cast(LiteralString, sql.strip().rstrip(";"))  # type: ignore[redundant-cast]
    return queries


@cache
def load_queries() -> Queries:
    queries: Queries = {}
    for path in sorted(data_dir("sql").joinpath("queries").glob("*.sql")):
        for name, sql in parse_queries(path.read_text(encoding="utf-8")).items():
            if name in queries:
                raise ValueError(f"query {name!r} is defined twice ({path.name})")
            queries[name] = sql
    return queries
