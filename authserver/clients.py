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

from authserver.db.rows import ClientFields, Issue, IssuedToken
from authserver.db.store import Store
from authserver.errors import Conflict, InvalidInput
from authserver.models import Client
from authserver.oidc.keys import ALGORITHMS
from authserver.scopes import DEFAULT_SCOPES, to_string
from authserver.security.client_secrets import SecretHasher, generate_client_secret
from authserver.security.tokens import TokenCodec, TokenKind, token_digest
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
_ID_ATTEMPTS = 3

_EDITABLE = {
    "name": Field(str, required=True, max_length=128, check=lambda v: _not_blank("name", v)),
    "description": Field(str, max_length=2000),
    "website": Field(str, required=True, check=check_website),
    "redirect_uris": Field(list, max_length=MAX_REDIRECT_URIS),
    "password_grant": Field(bool),
    "introspection": Field(bool),
    "require_pkce": Field(bool),
    # OpenID Connect Dynamic Client Registration §2: the names RPs know these settings by.
    "id_token_signed_response_alg": Field(
        str, check=lambda v: _one_of("id_token_signed_response_alg", v, ALGORITHMS)
    ),
    "post_logout_redirect_uris": Field(list, max_length=MAX_REDIRECT_URIS),
    # RFC 8693 / RFC 8707: web apps only (a database check says so too).
    "token_exchange": Field(bool),
    "resource_server": Field(bool),
    "device_grant": Field(bool),  # RFC 8628: off unless the app asks for it
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


@dataclass(frozen=True)
class ClientRules:
    """The operator's settings that shape what an application may register."""

    secret_overlap: int  # seconds a rotated-out secret keeps working
    allow_http_redirects: bool  # web apps may register plain-http redirect URIs
    require_pkce: bool = True  # a new web app's default (AUTHSERVER_PKCE_REQUIRED_FOR_ALL)


class Clients:
    """Registering and managing applications, as the admin API and the CLI do."""

    def __init__(
        self, store: Store, secrets: SecretHasher, codec: TokenCodec, rules: ClientRules
    ) -> None:
        self._store = store
        self._secrets = secrets
        self._codec = codec
        self._rules = rules

    async def create(self, payload: Mapping[str, Any]) -> Registered:
        data = check_fields(payload, CREATE_FIELDS)
        client_type: str = data["type"]
        fields = ClientFields(
            name=data["name"],
            description=data.get("description", ""),
            website=data["website"],
            redirect_uris=self._redirect_uris(client_type, data.get("redirect_uris")),
            password_grant=data.get("password_grant", False),
            introspection=data.get("introspection", False),
            active=True,
            require_pkce=_require_pkce(
                client_type, data.get("require_pkce"), default=self._rules.require_pkce
            ),
            id_token_signed_response_alg=data.get("id_token_signed_response_alg", "RS256"),
            post_logout_redirect_uris=self._post_logout_uris(
                client_type, data.get("post_logout_redirect_uris")
            ),
            token_exchange=_web_only(client_type, "token_exchange", data.get("token_exchange")),
            resource_server=_web_only(client_type, "resource_server", data.get("resource_server")),
            device_grant=data.get("device_grant", False),
        )
        secret = None if client_type == "desktop" else generate_client_secret()
        for attempt in range(_ID_ATTEMPTS):
            # 144 random bits: a clash with an existing id (a user's, since S-49) is all but
            # impossible, and answered with another draw rather than an error.
            client_id = secrets.token_urlsafe(18)
            try:
                return await self._insert(client_id, data["owner_id"], client_type, fields, secret)
            except Conflict:
                if attempt == _ID_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    async def _insert(
        self,
        client_id: str,
        owner_id: str,
        client_type: str,
        fields: ClientFields,
        secret: str | None,
    ) -> Registered:
        async with self._store.transaction() as tx:
            client = await tx.clients.insert(
                client_id, owner_id=owner_id, client_type=client_type, fields=fields
            )
            if secret is not None:
                await tx.clients.add_secret(client_id, self._secrets.digest(secret))
            await tx.audit.record("client.created", client_id=client_id, user_id=client.owner_id)
        return Registered(client, secret)

    async def get(self, client_id: str) -> Client:
        return await self._store.clients.get(check_client_id(client_id))

    async def page(self, owner_id: str | None, after: str = "", limit: int = 100) -> list[Client]:
        if owner_id is not None:
            check_user_id(owner_id)
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}")
        return await self._store.clients.page(owner_id, after=after, limit=limit)

    async def update(self, client_id: str, payload: Mapping[str, Any]) -> Client:
        """Change some settings; what the payload leaves out keeps its value."""
        check_client_id(client_id)
        data = check_fields(payload, UPDATE_FIELDS, partial=True)
        async with self._store.transaction() as tx:
            current = await tx.clients.get(client_id, lock=True)
            if "redirect_uris" in data:
                data["redirect_uris"] = self._redirect_uris(
                    current.client_type, data["redirect_uris"]
                )
            if "post_logout_redirect_uris" in data:
                data["post_logout_redirect_uris"] = self._post_logout_uris(
                    current.client_type, data["post_logout_redirect_uris"]
                )
            if "require_pkce" in data:
                data["require_pkce"] = _require_pkce(
                    current.client_type, data["require_pkce"], default=current.require_pkce
                )
            for flag in ("token_exchange", "resource_server"):
                if flag in data:
                    data[flag] = _web_only(current.client_type, flag, data[flag])
            fields = replace(_fields_of(current), **data)
            client = await tx.clients.update(client_id, fields)
            await tx.audit.record(
                "client.updated", client_id=client_id, detail={"fields": sorted(data)}
            )
            if current.active and not client.active:
                # Disabling kills what the client holds, for good: enabling it again must not
                # bring old tokens back (checklist S-72).
                revoked = await tx.tokens.revoke_of_client(client_id)
                await tx.codes.delete_unredeemed(client_id=client_id)
                await tx.device_codes.delete_unredeemed(client_id=client_id)
                await tx.audit.record(
                    "client.disabled", client_id=client_id, detail={"tokens_revoked": revoked}
                )
        return client

    async def delete(self, client_id: str) -> None:
        check_client_id(client_id)
        async with self._store.transaction() as tx:
            await tx.clients.delete(client_id)
            await tx.audit.record("client.deleted", client_id=client_id)

    async def rotate_secret(self, client_id: str) -> RotatedSecret:
        """Issue a new secret; the current one keeps working for the configured overlap."""
        check_client_id(client_id)
        overlap = self._rules.secret_overlap
        secret = generate_client_secret()
        async with self._store.transaction() as tx:
            client = await tx.clients.get(client_id, lock=True)
            if client.is_public:
                raise Conflict("desktop applications are public clients and have no secret")
            await tx.clients.retire_secrets(client_id, overlap=overlap)
            await tx.clients.add_secret(client_id, self._secrets.digest(secret))
            await tx.audit.record("client.secret_rotated", client_id=client_id)
        return RotatedSecret(client_id, secret, overlap)

    async def issue_developer_token(self, client_id: str) -> DeveloperToken:
        """The owner's own long-lived token for their app; issuing again kills the previous one.

        It belongs to the owner's grant for the app, so it dies with that grant, the app or the
        owner, and never expires on its own (Phraseanet's "generate token" button).
        """
        check_client_id(client_id)
        token = self._codec.mint(TokenKind.ACCESS)
        scope = to_string(DEFAULT_SCOPES)
        async with self._store.transaction() as tx:
            client = await tx.clients.get(client_id, lock=True)
            grant_id = await tx.grants.ensure(client.owner_id, client_id, DEFAULT_SCOPES)
            await tx.tokens.delete_developer_tokens(grant_id)
            issued = IssuedToken(token_digest(token), "access", scope, None)
            await tx.tokens.issue(
                [Issue("developer", client_id, client.owner_id, grant_id, None, None, (issued,))]
            )
        return DeveloperToken(client_id, token, scope)

    def _redirect_uris(self, client_type: str, uris: list[str] | None) -> tuple[str, ...]:
        if not uris:
            if client_type == "web":
                raise InvalidInput("redirect_uris: a web application needs at least one")
            return DESKTOP_DEFAULT_REDIRECT_URIS
        allow_http = self._rules.allow_http_redirects
        checked = tuple(check_redirect_uri(uri, client_type, allow_http) for uri in uris)
        if len(set(checked)) != len(checked):
            raise InvalidInput("redirect_uris must not repeat an entry")
        return checked

    def _post_logout_uris(self, client_type: str, uris: list[str] | None) -> tuple[str, ...]:
        """Where RP-Initiated Logout §3 may send the user back: the redirect URI rules, without
        the oob URN, and matched exactly (loopback ports included)."""
        field = "post_logout_redirect_uris"
        allow_http = self._rules.allow_http_redirects
        checked = tuple(
            check_redirect_uri(uri, client_type, allow_http, field) for uri in uris or ()
        )
        if len(set(checked)) != len(checked):
            raise InvalidInput(f"{field} must not repeat an entry")
        return checked


def _fields_of(client: Client) -> ClientFields:
    return ClientFields(
        name=client.name,
        description=client.description,
        website=client.website,
        redirect_uris=client.redirect_uris,
        password_grant=client.password_grant,
        introspection=client.introspection,
        active=client.active,
        require_pkce=client.require_pkce,
        id_token_signed_response_alg=client.id_token_signed_response_alg,
        post_logout_redirect_uris=client.post_logout_redirect_uris,
        token_exchange=client.token_exchange,
        resource_server=client.resource_server,
        device_grant=client.device_grant,
    )


def _web_only(client_type: str, field: str, wanted: bool | None) -> bool:
    """Exchanging tokens and receiving exchanged ones take a confidential client: a public one
    cannot prove who is acting (RFC 8693 §2.1), and a resource server introspects with a
    secret (RFC 7662 §2.1)."""
    if wanted and client_type != "web":
        raise InvalidInput(f"{field}: only web applications (confidential clients) may have it")
    return bool(wanted)


def _require_pkce(client_type: str, wanted: bool | None, *, default: bool) -> bool:
    """D17: a web app may go without PKCE (legacy SDKs); a desktop app never may, since PKCE is
    all that binds its code to it (RFC 8252 §8.1)."""
    if client_type == "desktop":
        if wanted is False:
            raise InvalidInput("require_pkce: desktop applications always require PKCE")
        return True
    return default if wanted is None else wanted


def _not_blank(field: str, value: str) -> str:
    if not value.strip():
        raise InvalidInput(f"{field} must not be blank")
    return value


def _one_of(field: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InvalidInput(f"{field} must be one of: {', '.join(allowed)}")
    return value
