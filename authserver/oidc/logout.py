"""RP-Initiated Logout 1.0: which application asks the user to sign out, and where the user may
be sent afterwards.

A ``post_logout_redirect_uri`` is followed only when it is one the application registered,
compared as a whole string (§3.1), and only when the application is known: from the
``id_token_hint``'s audience or from ``client_id``, which must agree when both are given (§2).
Anything else is refused with a page, never with a redirect.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from oauthlib.common import add_params_to_uri

from authserver.db.client_cache import ClientCache
from authserver.errors import ErrorPage
from authserver.models import Client
from authserver.oidc.keys import InvalidSignature, SigningKeys
from authserver.validation import CLIENT_ID

PARAMETERS = ("id_token_hint", "post_logout_redirect_uri", "state", "client_id", "logout_hint")


@dataclass(frozen=True)
class LogoutRequest:
    client: Client | None  # the application that asked, if it said who it is
    redirect_uri: str | None  # a registered post-logout URI, to send the user to afterwards
    state: str | None

    def destination(self) -> str | None:
        """Where the user goes once signed out (§3: ``state`` comes back with them)."""
        if self.redirect_uri is None:
            return None
        if self.state is None:
            return self.redirect_uri
        located: str = add_params_to_uri(self.redirect_uri, [("state", self.state)])
        return located


class Logouts:
    def __init__(self, keys: SigningKeys, clients: ClientCache, *, issuer: str) -> None:
        self._keys = keys
        self._clients = clients
        self._issuer = issuer

    async def check(self, params: Mapping[str, str]) -> LogoutRequest:
        """The request, checked; ``ErrorPage`` when it cannot be followed."""
        client_id = params.get("client_id")
        hint = params.get("id_token_hint")
        if hint is not None:
            audience = self._audience_of(hint)
            if client_id is not None and client_id != audience:
                raise ErrorPage("The application and its sign-in do not match.")
            client_id = audience
        client = None
        if client_id is not None:
            if not CLIENT_ID.fullmatch(client_id):
                raise ErrorPage("The application is unknown or no longer active.")
            loaded = await self._clients.fresh(client_id)
            if loaded is None or not loaded.client.active:
                raise ErrorPage("The application is unknown or no longer active.")
            client = loaded.client
        uri = params.get("post_logout_redirect_uri")
        if uri is not None and (client is None or uri not in client.post_logout_redirect_uris):
            raise ErrorPage("The application did not register where to send you afterwards.")
        return LogoutRequest(client, uri, params.get("state"))

    def _audience_of(self, hint: str) -> str:
        """The client an ID token of ours was issued to (it may have expired: §2)."""
        try:
            claims: dict[str, Any] = self._keys.verify(hint)
        except InvalidSignature:
            raise ErrorPage("The sign-in it refers to was not made here.") from None
        audience = claims.get("aud")
        if isinstance(audience, list) and len(audience) == 1:
            audience = audience[0]
        if claims.get("iss") != self._issuer or not isinstance(audience, str):
            raise ErrorPage("The sign-in it refers to was not made here.")
        return audience
