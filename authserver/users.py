"""Users, as the platform provisions them, and the applications each has authorized."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from authserver.db.store import Store
from authserver.errors import InvalidInput
from authserver.models import AuthorizedApp, User
from authserver.security.passwords import Passwords, is_argon2_hash
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
    "email_verified": Field(bool),  # the platform confirmed the address (OIDC Core §5.1)
    "display_name": Field(str, max_length=255),
    "password": Field(str, nullable=True, max_length=MAX_PASSWORD_LENGTH),
    "password_hash": Field(str, nullable=True, max_length=512, check=_argon2_hash),
}


async def _revoke_everything_of(tx: Store, user_id: str) -> None:
    """What a password change or reset ends: tokens, unredeemed codes and device codes, browser
    sessions."""
    tokens = await tx.tokens.revoke_of_user(user_id)
    await tx.codes.delete_unredeemed(user_id=user_id)
    await tx.device_codes.delete_unredeemed(user_id=user_id)
    sessions = await tx.sessions.delete_of_user(user_id)
    await tx.audit.record(
        "user.password_changed",
        user_id=user_id,
        detail={"tokens_revoked": tokens, "sessions_ended": sessions},
    )


class Users:
    """Provisioning users, as the platform does through the admin API and operators through the
    CLI, and the applications each has authorized."""

    def __init__(self, store: Store, passwords: Passwords) -> None:
        self._store = store
        self._passwords = passwords

    async def upsert(self, user_id: str, payload: Mapping[str, Any]) -> tuple[User, bool]:
        """Create or replace a user; the flag says whether the user is new.

        ``password`` is hashed here; ``password_hash`` imports an existing argon2 hash. With
        neither member the stored password is kept, and an explicit null removes it.

        A password change or reset of an existing user (a new ``password``, a different
        ``password_hash``, or null) revokes the user's tokens, unredeemed codes and browser
        sessions: the platform resets a password because the account may be in other hands
        (checklist S-40).
        """
        check_user_id(user_id)
        data = check_fields(payload, UPSERT_FIELDS)
        if "password" in data and "password_hash" in data:
            raise InvalidInput("send password or password_hash, not both")
        if data.get("email_verified") and data.get("email") is None:
            raise InvalidInput("email_verified needs an email")
        keep_password = "password" not in data and "password_hash" not in data
        password_hash = data.get("password_hash")
        if data.get("password") is not None:
            if not data["password"]:
                raise InvalidInput("password must not be empty")
            password_hash = await self._passwords.hash(data["password"])
        async with self._store.transaction() as tx:
            before = await tx.users.locked(user_id)
            user, created = await tx.users.upsert(
                user_id,
                login=data["login"],
                email=data.get("email"),
                display_name=data.get("display_name", ""),
                password_hash=password_hash,
                keep_password=keep_password,
                email_verified=data.get("email_verified", False),
            )
            await tx.audit.record("user.created" if created else "user.replaced", user_id=user_id)
            changed = "password" in data or (
                "password_hash" in data
                and before is not None
                and before.password_hash != password_hash
            )
            if before is not None and changed:
                await _revoke_everything_of(tx, user_id)
        return user, created

    async def get(self, user_id: str) -> User:
        return await self._store.users.get(check_user_id(user_id))

    async def delete(self, user_id: str) -> None:
        check_user_id(user_id)
        async with self._store.transaction() as tx:
            await tx.users.delete(user_id)
            await tx.audit.record("user.deleted", user_id=user_id)

    async def grants(self, user_id: str) -> list[AuthorizedApp]:
        check_user_id(user_id)
        await self._store.users.get(user_id)  # 404 for an unknown user, not an empty list
        return await self._store.grants.of_user(user_id)

    async def revoke_grant(self, user_id: str, client_id: str) -> None:
        """The user withdraws consent: every code and token issued under it dies with it."""
        check_user_id(user_id)
        check_client_id(client_id)
        async with self._store.transaction() as tx:
            await tx.grants.revoke(user_id, client_id)
            await tx.audit.record("grant.revoked", client_id=client_id, user_id=user_id)
