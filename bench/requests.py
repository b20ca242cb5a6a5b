"""The request files post.lua reads: one request per line, "<Authorization>\\t<form body>"."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import urlencode

from bench.seed import ClientCreds, Seeded


def write_lines(path: Path, lines: Iterable[tuple[str, dict[str, str]]]) -> Path:
    with path.open("w", encoding="ascii") as out:
        for authorization, form in lines:
            out.write(f"{authorization}\t{urlencode(form)}\n")
    return path


def introspection(path: Path, seeded: Seeded, tokens: Iterable[str]) -> Path:
    basic = seeded.introspector.basic()
    return write_lines(path, ((basic, {"token": token}) for token in tokens))


def client_credentials(path: Path, clients: Iterable[ClientCreds]) -> Path:
    return write_lines(
        path, ((client.basic(), {"grant_type": "client_credentials"}) for client in clients)
    )


def refresh(
    path: Path, clients: Mapping[str, ClientCreds], issued: Iterable[tuple[str, str]]
) -> Path:
    """One rotation per line; each refresh token appears once in all files."""
    return write_lines(
        path,
        (
            (clients[client_id].basic(), {"grant_type": "refresh_token", "refresh_token": token})
            for client_id, token in issued
        ),
    )
