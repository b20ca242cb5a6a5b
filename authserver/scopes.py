"""The scopes a token can carry, and the words the consent page uses for them.

Phraseanet's API has no scopes today: every token has full access. ``read`` and ``write``
split that in two so a user can grant less; asking for nothing means asking for both, which
keeps existing integrations working unchanged. ``openid``, ``profile`` and ``email`` are
OpenID Connect's: they let an application sign the user in and read who they are.
"""

from __future__ import annotations

from collections.abc import Iterable

SCOPES: dict[str, str] = {
    "read": "See your documents, collections, stories and baskets",
    "write": "Add, change and delete your documents, collections, stories and baskets",
    # OpenID Connect Core §3.1.2.1, §5.4: who the user is, for signing in to the application.
    "openid": "Know that it is you when you sign in to it",
    "profile": "See your name and login",
    "email": "See your e-mail address",
}
DEFAULT_SCOPES: tuple[str, ...] = ("read", "write")


def known(scopes: Iterable[str]) -> bool:
    return all(scope in SCOPES for scope in scopes)


def normalize(scopes: Iterable[str]) -> tuple[str, ...]:
    """Sorted and without repeats, so equal sets have one spelling in storage and responses."""
    return tuple(sorted(set(scopes)))


def to_string(scopes: Iterable[str]) -> str:
    return " ".join(normalize(scopes))


def from_string(value: str) -> tuple[str, ...]:
    return normalize(value.split())
