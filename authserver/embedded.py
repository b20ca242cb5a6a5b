"""The development default: an embedded PostgreSQL and generated keys in a local directory.

Used only when ``AUTHSERVER_DATABASE_URL`` is unset, so a newcomer runs the real server with
one command. The generated keys and admin token are written once to ``dev-secrets.json`` (mode
0600) and reused on later runs; they are printed only when created.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sys
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from authserver.config import PREFIX, Settings, parse_address

SECRETS_FILE = "dev-secrets.json"


def _dev_secrets(data_dir: Path) -> tuple[dict[str, str], bool]:
    path = data_dir / SECRETS_FILE
    if path.exists():
        stored = json.loads(path.read_text(encoding="utf-8"))
        return {"SECRET_KEYS": stored["secret_key"], "ADMIN_TOKENS": stored["admin_token"]}, False
    created = {"secret_key": secrets.token_urlsafe(32), "admin_token": secrets.token_urlsafe(32)}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(created, handle)
    return {"SECRET_KEYS": created["secret_key"], "ADMIN_TOKENS": created["admin_token"]}, True


@contextmanager
def embedded_settings(environ: Mapping[str, str], announce: bool = True) -> Iterator[Settings]:
    """Settings backed by an embedded PostgreSQL that runs until the context ends."""
    # pgserver warns when XDG_RUNTIME_DIR is unset (containers, CI) and logs every pg_ctl
    # call at INFO; neither helps someone starting a development server.
    warnings.filterwarnings("ignore", module="platformdirs")
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    import pgserver  # only the development path needs it

    data_dir = Path(environ.get(PREFIX + "DATA_DIR", "").strip() or ".authserver").resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    dev, created = _dev_secrets(data_dir)
    public = parse_address(environ.get(PREFIX + "PUBLIC_ADDR", "").strip() or "0.0.0.0:8080")
    host = "localhost" if public.host in ("0.0.0.0", "::", "127.0.0.1") else public.host  # noqa: S104
    defaults = {**dev, "ISSUER": f"http://{host}:{public.port}"}
    server: Any = pgserver.get_server(  # type: ignore[attr-defined]
        data_dir / "pgdata", cleanup_mode="stop"
    )
    try:
        env = {PREFIX + name: value for name, value in defaults.items()}
        env.update({key: value for key, value in environ.items() if value.strip()})
        env[PREFIX + "DATABASE_URL"] = server.get_uri()
        env[PREFIX + "DATA_DIR"] = str(data_dir)
        settings = Settings.from_env(env)
        if announce:
            _announce(data_dir, dev, created)
        yield settings
    finally:
        server.cleanup()


def _announce(data_dir: Path, dev: dict[str, str], created: bool) -> None:
    print(
        "WARNING: development setup: embedded PostgreSQL and generated keys in "
        f"{data_dir}. Set AUTHSERVER_DATABASE_URL, AUTHSERVER_SECRET_KEYS and "
        "AUTHSERVER_ADMIN_TOKENS for production.",
        file=sys.stderr,
    )
    if created:
        print(f"Admin token (shown once; kept in {data_dir / SECRETS_FILE}):", file=sys.stderr)
        print(f"  {dev['ADMIN_TOKENS']}", file=sys.stderr)
    else:
        print(f"Admin token: see {data_dir / SECRETS_FILE}", file=sys.stderr)
