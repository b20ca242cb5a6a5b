"""The authorization endpoint's pages: sign in, consent, the oob code.

GET validates the request (authserver.oauth.authorization) and shows the page the user needs
next; the forms POST back to the same URL. Form posts always answer 303 (RFC 9700 §4.12), and
every form carries a CSRF token bound to the browser session and a signed copy of the
validated request, so a POST cannot change the client, redirect URI, scopes or PKCE challenge.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from authserver import scopes as scope_names
from authserver.db.store import Store
from authserver.errors import ErrorPage
from authserver.http.browser import Browser
from authserver.http.session import REQUEST_TTL, Session
from authserver.models import User
from authserver.oauth.authorization import (
    Authorization,
    AuthorizationRequest,
    Checked,
    ErrorRedirect,
)
from authserver.signin import SignInPolicy
from authserver.validation import OOB_URI, is_loopback_uri


class AuthorizePages:
    def __init__(
        self,
        authorization: Authorization,
        browser: Browser,
        sign_in: SignInPolicy,
        store: Store,
        *,
        code_ttl: int,
    ) -> None:
        self._authorization = authorization
        self._browser = browser
        self._pages = browser.pages
        self._signer = browser.signer
        self._sign_in = sign_in
        self._store = store
        self._code_minutes = max(1, code_ttl // 60)

    async def authorize(self, request: Request) -> Response:
        """GET: show the next page for this authorization request, or answer it."""
        browser = self._browser
        session = browser.session(request)
        signed_in = await browser.signed_in(session)
        user, auth_time = signed_in if signed_in is not None else (None, None)
        try:
            asked = AuthorizationRequest.parse(request.scope["query_string"])
            checked = await self._authorization.check(asked, user, auth_time)
        except ErrorPage as exc:
            return self._error_page(exc)
        if isinstance(checked, ErrorRedirect):
            return RedirectResponse(checked.location, 302)
        prompts = asked.prompts
        # OpenID Connect Core §3.1.2.1: prompt=login, or a sign-in older than max_age, asks
        # the user to sign in again.
        if user is None or "login" in prompts or asked.too_old(auth_time, datetime.now(UTC)):
            if "none" in prompts:
                return self._redirect_or_page(
                    lambda: self._authorization.error_for(
                        checked, "login_required", "sign-in needed"
                    )
                )
            return await self._login_page(request, session, user, asked.after_sign_in(), checked)
        # RFC 6749 §10.2: only a confidential client, authenticated when it redeems the code, is
        # re-approved silently; the user of a public client is asked every time.
        if checked.remembered and not checked.client.is_public and "consent" not in prompts:
            return await self._issue(checked, 302)
        if "none" in prompts:
            return self._redirect_or_page(
                lambda: self._authorization.error_for(checked, "consent_required", "consent needed")
            )
        assert session is not None  # a signed-in user came with a session
        return await self._consent_page(request, session, user, checked)

    async def authorize_post(self, request: Request) -> Response:
        """POST: the login form or the consent form."""
        checked_form = await self._browser.protected_form(request)
        if isinstance(checked_form, Response):
            return checked_form
        form, session = checked_form
        signed_in = await self._browser.signed_in(session)
        user, auth_time = signed_in if signed_in is not None else (None, None)
        signed = self._signer.load_request(
            form.get("request"), session, user.user_id if user is not None else None
        )
        if signed is None:
            return self._pages.error(
                400, "This form cannot be used", "The form has expired or was changed."
            )
        query = signed.query.encode("latin-1")
        action = form.get("action")
        if action == "login":
            return await self._login(request, session, user, form, query)
        if action == "consent" and signed.nonce is not None and user is not None:
            return await self._consent(user, auth_time, form, query, signed.nonce)
        return self._pages.error(400, "This form cannot be used", "The form is incomplete.")

    async def _login(
        self,
        request: Request,
        session: Session,
        current: User | None,
        form: dict[str, str],
        query: bytes,
    ) -> Response:
        try:
            asked = AuthorizationRequest.parse(query)
            checked = await self._authorization.check(asked, None)
        except ErrorPage as exc:
            return self._error_page(exc)
        if isinstance(checked, ErrorRedirect):
            return RedirectResponse(checked.location, 303)
        checked_password = await self._browser.check_password(
            self._sign_in, request, form, via="login_page", client_id=checked.client.client_id
        )
        if isinstance(checked_password, Response):
            return checked_password
        if checked_password is None:
            message = "The login or password is not right."
            username = form.get("username", "")
            return await self._login_page(
                request, session, current, asked, checked, 400, username, message
            )
        fresh = await self._browser.sign_in(session, checked_password)
        response = RedirectResponse(f"{request.url.path}?{query.decode('latin-1')}", 303)
        self._browser.set_cookie(response, fresh)
        return response

    async def _consent(
        self,
        user: User,
        auth_time: datetime | None,
        form: dict[str, str],
        query: bytes,
        nonce: str,
    ) -> Response:
        decision = form.get("decision")
        if decision not in ("allow", "deny"):
            return self._pages.error(400, "This form cannot be used", "Choose Allow or Deny.")
        try:
            checked = await self._authorization.check(
                AuthorizationRequest.parse(query), user, auth_time
            )
        except ErrorPage as exc:
            return self._error_page(exc)
        if isinstance(checked, ErrorRedirect):
            return RedirectResponse(checked.location, 303)
        # One form, one answer: a second submission (double click, replay) issues nothing.
        if not await self._store.sessions.claim_consent_nonce(nonce, ttl=REQUEST_TTL):
            return self._pages.error(
                400, "This form was already used", "Go back to the application and start again."
            )
        if decision == "deny":
            await self._store.audit.record(
                "consent.denied", client_id=checked.client.client_id, user_id=user.user_id
            )
            return self._redirect_or_page(lambda: self._authorization.deny(checked))
        return await self._issue(checked, 303)

    async def _issue(self, checked: Checked, status: int) -> Response:
        try:
            issued = await self._authorization.issue(checked)
        except ErrorPage as exc:
            return self._error_page(exc)
        if issued.code is not None:
            return self._pages.render(
                "oob.html", client=checked.client, code=issued.code, minutes=self._code_minutes
            )
        if issued.location is None:
            return self._pages.error(400, "This request cannot be completed", "Start again.")
        return RedirectResponse(issued.location, status)

    async def _login_page(
        self,
        request: Request,
        session: Session | None,
        user: User | None,
        asked: AuthorizationRequest,
        checked: Checked,
        status: int = 200,
        username: str = "",
        message: str = "",
    ) -> Response:
        session = session or Session.new()
        user_id = user.user_id if user is not None else None
        response = self._pages.render(
            "login.html",
            status,
            client=checked.client,
            owner=await self._browser.owner_name(checked.client),
            action=request.url.path,
            csrf_token=self._signer.csrf_token(session),
            signed_request=self._signer.sign_request(
                asked.query.decode("latin-1"), session, user_id
            ),
            # OpenID Connect Core §3.1.2.1: the application may say who it expects.
            username=username or asked.params.get("login_hint", "")[:255],
            message=message,
        )
        self._browser.set_cookie(response, session)
        return response

    async def _consent_page(
        self, request: Request, session: Session, user: User, checked: Checked
    ) -> Response:
        nonce = secrets.token_urlsafe(16)
        return self._pages.render(
            "consent.html",
            client=checked.client,
            owner=await self._browser.owner_name(checked.client),
            destination=destination(checked.redirect_uri),
            scopes=[scope_names.SCOPES[name] for name in checked.scopes],
            user_name=user.display_name or user.login,
            action=request.url.path,
            csrf_token=self._signer.csrf_token(session),
            signed_request=self._signer.sign_request(
                checked.request.query.decode("latin-1"), session, user.user_id, nonce
            ),
        )

    def _redirect_or_page(self, make: Callable[[], ErrorRedirect]) -> Response:
        """An error redirect, or a page when there is nowhere to redirect to (the oob URN)."""
        try:
            return RedirectResponse(make().location, 303)
        except ErrorPage as exc:
            return self._error_page(exc)

    def _error_page(self, exc: ErrorPage) -> Response:
        return self._pages.error(400, "This request cannot be completed", exc.description)

    def routes(self) -> list[Route]:
        return [
            Route("/oauth2/authorize", self.authorize, methods=["GET"]),
            Route("/oauth2/authorize", self.authorize_post, methods=["POST"]),
            Route("/api/oauthv2/authorize", self.authorize, methods=["GET"]),  # Phraseanet's
            Route("/api/oauthv2/authorize", self.authorize_post, methods=["POST"]),
        ]


def destination(redirect_uri: str) -> str:
    """Where the code goes once the user decides, in words the consent page shows (RFC 6819
    §4.4.1.4, RFC 9700 §4.1: the user should see the redirect target, not just the app)."""
    if redirect_uri == OOB_URI:
        return "You will get a code to copy into the application."
    if is_loopback_uri(redirect_uri):
        return "You will be sent back to an application on this computer."
    parts = urlsplit(redirect_uri)
    if parts.scheme in ("http", "https"):
        return f"You will be sent back to {parts.hostname}."
    return f"You will be sent back to the application that opens {parts.scheme} links."
