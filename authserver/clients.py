"""Applications ("clients"): registration, settings, secret rotation, developer tokens.

Shared by the admin API and the CLI: both hand over a plain mapping (decoded JSON, parsed
arguments) and get typed results back. Secrets and tokens leave this module exactly once, in
the result of the call that created them.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from authserver.db.store import ClientFields, Issue, IssuedToken
from authserver.errors import Conflict, InvalidInput
from authserver.models import Client
from authserver.resources import Resources
from authserver.scopes import DEFAULT_SCOPES, to_string
from authserver.security.client_secrets import generate_client_secret
from authserver.security.tokens import TokenKind, token_digest
from authserver.validation import (
    Field,
    check_client_id,
    check_fields,
    check_redirect_uri,
    check_user_id,
    check_website,
)

# RFC 8252 §7.3 and Phraseanet's desktop clients: any loopback port, or the code shown to copy.
DESKTOP_DEFAULT_REDIRECT_URIS = ("http://127.0.0.1/callback", "urn:ietf:wg:oauth:2.0:oob")
MAX_REDIRECT_URIS = 20
MAX_PAGE = 500

_EDITABLE = {
    "name": Field(str, required=True, max_length=128, check=lambda v: _not_blank("name", v)),
    "description": Field(str, max_length=2000),
    "website": Field(str, required=True, check=check_website),
    "redirect_uris": Field(list, max_length=MAX_REDIRECT_URIS),
    "password_grant": Field(bool),
    "introspection": Field(bool),
}
CREATE_FIELDS = {
    **_EDITABLE,
    "type": Field(str, required=True, check=lambda v: _one_of("type", v, ("web", "desktop"))),
    "owner_id": Field(str, required=True, check=check_user_id),
}
UPDATE_FIELDS = {**_EDITABLE, "active": Field(bool)}


@dataclass(frozen=True)
class Registered:
    client: Client
    client_secret: str | None  # None for desktop apps, which are public clients


@dataclass(frozen=True)
class RotatedSecret:
    client_id: str
    client_secret: str
    previous_valid_for: int  # seconds the rotated-out secret keeps working


@dataclass(frozen=True)
class DeveloperToken:
    client_id: str
    access_token: str
    scope: str


async def create_client(res: Resources, payload: Mapping[str, Any]) -> Registered:
    data = check_fields(payload, CREATE_FIELDS)
    client_type: str = data["type"]
    fields = ClientFields(
        name=data["name"],
        description=data.get("description", ""),
        website=data["website"],
        redirect_uris=_redirect_uris(res, client_type, data.get("redirect_uris")),
        password_grant=data.get("password_grant", False),
        introspection=data.get("introspection", False),
        active=True,
    )
    client_id = secrets.token_urlsafe(18)
    secret = None if client_type == "desktop" else generate_client_secret()
    async with res.store.transaction() as tx:
        client = await tx.insert_client(client_id, data["owner_id"], client_type, fields)
        if secret is not None:
            await tx.insert_client_secret(client_id, res.secrets.digest(secret))
        await tx.audit("client.created", client_id=client_id, user_id=client.owner_id)
    return Registered(client, secret)


async def get_client(res: Resources, client_id: str) -> Client:
    return await res.store.get_client(check_client_id(client_id))


async def list_clients(
    res: Resources, owner_id: str | None, after: str = "", limit: int = 100
) -> list[Client]:
    if owner_id is not None:
        check_user_id(owner_id)
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}")
    return await res.store.list_clients(owner_id, after, limit)


async def update_client(res: Resources, client_id: str, payload: Mapping[str, Any]) -> Client:
    """Change some settings; what the payload leaves out keeps its value."""
    check_client_id(client_id)
    data = check_fields(payload, UPDATE_FIELDS, partial=True)
    async with res.store.transaction() as tx:
        current = await tx.get_client(client_id, lock=True)
        fields = ClientFields(
            name=current.name,
            description=current.description,
            website=current.website,
            redirect_uris=current.redirect_uris,
            password_grant=current.password_grant,
            introspection=current.introspection,
            active=current.active,
        )
        if "redirect_uris" in data:
            data["redirect_uris"] = _redirect_uris(res, current.client_type, data["redirect_uris"])
        fields = replace(fields, **data)
        client = await tx.update_client(client_id, fields)
        await tx.audit("client.updated", client_id=client_id, detail={"fields": sorted(data)})
    return client


async def delete_client(res: Resources, client_id: str) -> None:
    check_client_id(client_id)
    async with res.store.transaction() as tx:
        await tx.delete_client(client_id)
        await tx.audit("client.deleted", client_id=client_id)


async def rotate_secret(res: Resources, client_id: str) -> RotatedSecret:
    """Issue a new secret; the current one keeps working for the configured overlap."""
    check_client_id(client_id)
    overlap = res.settings.secret_overlap
    secret = generate_client_secret()
    async with res.store.transaction() as tx:
        client = await tx.get_client(client_id, lock=True)
        if client.is_public:
            raise Conflict("desktop applications are public clients and have no secret")
        await tx.retire_client_secrets(client_id, overlap)
        await tx.insert_client_secret(client_id, res.secrets.digest(secret))
        await tx.audit("client.secret_rotated", client_id=client_id)
    return RotatedSecret(client_id, secret, overlap)


async def issue_developer_token(res: Resources, client_id: str) -> DeveloperToken:
    """The owner's own long-lived token for their app; issuing again kills the previous one.

    It belongs to the owner's grant for the app, so it dies with that grant, the app or the
    owner, and never expires on its own (Phraseanet's "generate token" button).
    """
    check_client_id(client_id)
    token = res.tokens.mint(TokenKind.ACCESS)
    async with res.store.transaction() as tx:
        client = await tx.get_client(client_id, lock=True)
        grant_id = await tx.ensure_grant(client.owner_id, client_id, DEFAULT_SCOPES)
        await tx.delete_developer_tokens(grant_id)
        issued = IssuedToken(token_digest(token), "access", to_string(DEFAULT_SCOPES), None)
        await tx.issue_tokens(
            [Issue("developer", client_id, client.owner_id, grant_id, None, None, (issued,))]
        )
    return DeveloperToken(client_id, token, to_string(DEFAULT_SCOPES))


def _redirect_uris(res: Resources, client_type: str, uris: list[str] | None) -> tuple[str, ...]:
    if not uris:
        if client_type == "web":
            raise InvalidInput("redirect_uris: a web application needs at least one")
        return DESKTOP_DEFAULT_REDIRECT_URIS
    allow_http = res.settings.allow_http_redirects
    checked = tuple(check_redirect_uri(uri, client_type, allow_http) for uri in uris)
    if len(set(checked)) != len(checked):
        raise InvalidInput("redirect_uris must not repeat an entry")
    return checked


def _not_blank(field: str, value: str) -> str:
    if not value.strip():
        raise InvalidInput(f"{field} must not be blank")
    return value


def _one_of(field: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InvalidInput(f"{field} must be one of: {', '.join(allowed)}")
    return value
