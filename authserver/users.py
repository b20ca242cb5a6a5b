"""Users, as the platform provisions them, and the applications each has authorized."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from authserver.errors import InvalidInput
from authserver.models import AuthorizedApp, User
from authserver.resources import Resources
from authserver.security.passwords import is_argon2_hash
from authserver.validation import (
    Field,
    check_client_id,
    check_fields,
    check_user_id,
    normalize_login,
)

MAX_PASSWORD_LENGTH = 1024  # argon2 takes any length; this only bounds the work a request buys


def _argon2_hash(value: str) -> str:
    if not is_argon2_hash(value):
        raise InvalidInput("password_hash must be an argon2 hash in PHC string format")
    return value


def _email(value: str) -> str:
    local, at, domain = value.rpartition("@")
    if not at or not local or "." not in domain or any(c.isspace() for c in value):
        raise InvalidInput("email must be an e-mail address")
    return value


def _login(value: str) -> str:
    value = normalize_login(value)
    if not value.strip() or any(not c.isprintable() for c in value):
        raise InvalidInput("login must be printable and not blank")
    return value


UPSERT_FIELDS = {
    "login": Field(str, required=True, max_length=255, check=_login),
    "email": Field(str, nullable=True, max_length=320, check=_email),
    "display_name": Field(str, max_length=255),
    "password": Field(str, nullable=True, max_length=MAX_PASSWORD_LENGTH),
    "password_hash": Field(str, nullable=True, max_length=512, check=_argon2_hash),
}


async def upsert_user(
    res: Resources, user_id: str, payload: Mapping[str, Any]
) -> tuple[User, bool]:
    """Create or replace a user; the flag says whether the user is new.

    ``password`` is hashed here; ``password_hash`` imports an existing argon2 hash. With neither
    member the stored password is kept, and an explicit null removes it.
    """
    check_user_id(user_id)
    data = check_fields(payload, UPSERT_FIELDS)
    if "password" in data and "password_hash" in data:
        raise InvalidInput("send password or password_hash, not both")
    keep_password = "password" not in data and "password_hash" not in data
    password_hash = data.get("password_hash")
    if data.get("password") is not None:
        if not data["password"]:
            raise InvalidInput("password must not be empty")
        password_hash = await res.passwords.hash(data["password"])
    return await res.store.upsert_user(
        user_id,
        data["login"],
        data.get("email"),
        data.get("display_name", ""),
        password_hash,
        keep_password,
    )


async def get_user(res: Resources, user_id: str) -> User:
    return await res.store.get_user(check_user_id(user_id))


async def delete_user(res: Resources, user_id: str) -> None:
    check_user_id(user_id)
    async with res.store.transaction() as tx:
        await tx.delete_user(user_id)
        await tx.audit("user.deleted", user_id=user_id)


async def list_grants(res: Resources, user_id: str) -> list[AuthorizedApp]:
    check_user_id(user_id)
    await res.store.get_user(user_id)  # 404 for an unknown user, not an empty list
    return await res.store.list_user_grants(user_id)


async def revoke_grant(res: Resources, user_id: str, client_id: str) -> None:
    """The user withdraws consent: every code and token issued under it dies with it."""
    check_user_id(user_id)
    check_client_id(client_id)
    async with res.store.transaction() as tx:
        await tx.revoke_grant(user_id, client_id)
        await tx.audit("grant.revoked", client_id=client_id, user_id=user_id)
