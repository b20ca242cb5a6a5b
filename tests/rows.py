"""Rows as the store returns them, for tests of the pure parts (no database): one web client,
one stored token, changed field by field."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from authserver.models import Client, TokenRow
from authserver.security.tokens import token_digest

NOW = datetime.now(UTC)
REDIRECT = "https://photosync.example/cb"


def web_client(**changes: Any) -> Client:
    client = Client(
        client_id="client-1",
        name="Photo Sync",
        description="",
        website="https://photosync.example",
        client_type="web",
        redirect_uris=(REDIRECT,),
        owner_id="owner-1",
        password_grant=False,
        introspection=False,
        active=True,
        created_at=NOW,
        updated_at=NOW,
    )
    return replace(client, **changes)


def token_row(token: str, **changes: Any) -> TokenRow:
    """A live refresh token of ``web_client`` for alice, stored under ``token``'s digest."""
    row = TokenRow(
        digest=token_digest(token),
        kind="refresh",
        client_id="client-1",
        user_id="alice-1",
        grant_id=1,
        family_id=uuid.uuid4(),
        scope="read write",
        developer=False,
        created_at=NOW,
        expires_at=NOW + timedelta(days=1),
        username="alice",
        consumed=False,
        revoked=False,
        live=True,
        client_active=True,
    )
    return replace(row, **changes)
