"""The device verification page (RFC 8628 §3.3): enter the code, sign in, allow or deny.

``GET /device`` shows the code form (prefilled from ``verification_uri_complete``'s
``user_code``); once the person is signed in, the code in the URL leads straight to the consent
page, which shows it again so they can compare it with their device's (§5.4). Every form posts
back to the same path with a CSRF token bound to the browser session; the login and consent
forms also carry a signed copy of the code, so a post cannot switch devices, and sign-in goes
through the same sign-in policy as the authorization endpoint's login page. Form posts answer
303 or a page, never a redirect that would repost.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from authserver import scopes as scope_names
from authserver.db.store import Store
from authserver.http.browser import Browser, client_address
from authserver.http.session import REQUEST_TTL, Session
from authserver.models import User
from authserver.oauth.device import VERIFICATION_PATH
from authserver.oauth.params import parse_query
from authserver.oauth.verification import Found, Lookup, Verification
from authserver.signin import SignInPolicy

_UNKNOWN = "That code is not valid, or has expired. Check your device and try again."
_MAX_TYPED = 32  # characters of a typed code worth reading


class DevicePages:
    def __init__(
        self,
        verification: Verification,
        browser: Browser,
        sign_in: SignInPolicy,
        store: Store,
    ) -> None:
        self._verification = verification
        self._browser = browser
        self._pages = browser.pages
        self._signer = browser.signer
        self._sign_in = sign_in
        self._store = store

    async def show(self, request: Request) -> Response:
        """GET: the code form, or for a signed-in person with a code, its consent page."""
        session = self._browser.session(request)
        signed_in = await self._browser.signed_in(session)
        typed = _typed(request.query_params.get("user_code", ""))
        if not typed or signed_in is None or session is None:
            return self._code_page(session, typed)
        lookup = await self._verification.find(typed, client_address(request))
        if lookup.found is None:
            return self._not_found(session, typed, lookup)
        return await self._consent_page(session, signed_in[0], lookup.found)

    async def post(self, request: Request) -> Response:
        """POST: the code form, the login form or the consent form."""
        checked_form = await self._browser.protected_form(request)
        if isinstance(checked_form, Response):
            return checked_form
        form, session = checked_form
        signed_in = await self._browser.signed_in(session)
        action = form.get("action")
        if action == "code":
            return await self._code(request, session, signed_in, form)
        user = signed_in[0] if signed_in is not None else None
        signed = self._signer.load_request(
            form.get("request"), session, user.user_id if user is not None else None
        )
        if signed is None:
            return self._pages.error(
                400, "This form cannot be used", "The form has expired or was changed."
            )
        typed = _typed(_signed_code(signed.query))
        if action == "login":
            return await self._login(request, session, form, typed)
        if action == "consent" and signed.nonce is not None and signed_in is not None:
            return await self._consent(request, signed_in, form, typed, signed.nonce)
        return self._pages.error(400, "This form cannot be used", "The form is incomplete.")

    async def _code(
        self,
        request: Request,
        session: Session,
        signed_in: tuple[User, datetime] | None,
        form: dict[str, str],
    ) -> Response:
        typed = _typed(form.get("user_code", ""))
        lookup = await self._verification.find(typed, client_address(request))
        if lookup.found is None:
            return self._not_found(session, typed, lookup)
        if signed_in is not None:
            return RedirectResponse(_page_url(lookup.found.user_code), 303)
        return await self._login_page(session, lookup.found)

    async def _login(
        self, request: Request, session: Session, form: dict[str, str], typed: str
    ) -> Response:
        lookup = await self._verification.find(typed, client_address(request))
        if lookup.found is None:
            return self._not_found(session, typed, lookup)
        found = lookup.found
        checked = await self._browser.check_password(
            self._sign_in, request, form, via="device_page", client_id=found.client.client_id
        )
        if isinstance(checked, Response):
            return checked
        if checked is None:
            message = "The login or password is not right."
            return await self._login_page(session, found, 400, form.get("username", ""), message)
        fresh = await self._browser.sign_in(session, checked)
        response = RedirectResponse(_page_url(found.user_code), 303)
        self._browser.set_cookie(response, fresh)
        return response

    async def _consent(
        self,
        request: Request,
        signed_in: tuple[User, datetime],
        form: dict[str, str],
        typed: str,
        nonce: str,
    ) -> Response:
        decision = form.get("decision")
        if decision not in ("allow", "deny"):
            return self._pages.error(400, "This form cannot be used", "Choose Allow or Deny.")
        # One form, one answer: a second submission (double click, replay) decides nothing.
        if not await self._store.sessions.claim_consent_nonce(nonce, ttl=REQUEST_TTL):
            return self._pages.error(
                400, "This form was already used", "Enter the code from your device again."
            )
        user, auth_time = signed_in
        lookup = await self._verification.find(typed, client_address(request))
        allow = decision == "allow"
        found = lookup.found
        if found is None or not await self._verification.decide(
            found, user, auth_time, allow=allow
        ):
            return self._pages.error(400, "This request cannot be completed", _UNKNOWN)
        return self._pages.render("device_done.html", client=found.client, allowed=allow)

    def _code_page(
        self, session: Session | None, typed: str, status: int = 200, message: str = ""
    ) -> Response:
        session = session or Session.new()
        response = self._pages.render(
            "device.html",
            status,
            action=VERIFICATION_PATH,
            csrf_token=self._signer.csrf_token(session),
            user_code=typed,
            message=message,
        )
        self._browser.set_cookie(response, session)
        return response

    def _not_found(self, session: Session | None, typed: str, lookup: Lookup) -> Response:
        if lookup.paused_for is not None:
            paused = self._pages.error(
                429, "Too many attempts", "Entering codes is paused for a while. Try again later."
            )
            paused.headers["Retry-After"] = str(lookup.paused_for)
            return paused
        return self._code_page(session, typed, 400, _UNKNOWN)

    async def _login_page(
        self,
        session: Session,
        found: Found,
        status: int = 200,
        username: str = "",
        message: str = "",
    ) -> Response:
        return self._pages.render(
            "login.html",
            status,
            client=found.client,
            owner=await self._browser.owner_name(found.client),
            action=VERIFICATION_PATH,
            csrf_token=self._signer.csrf_token(session),
            signed_request=self._signer.sign_request(_code_query(found.user_code), session, None),
            username=username,
            message=message,
        )

    async def _consent_page(self, session: Session, user: User, found: Found) -> Response:
        nonce = secrets.token_urlsafe(16)
        return self._pages.render(
            "device_consent.html",
            client=found.client,
            owner=await self._browser.owner_name(found.client),
            user_code=found.user_code,
            scopes=[scope_names.SCOPES[name] for name in found.scopes],
            user_name=user.display_name or user.login,
            action=VERIFICATION_PATH,
            csrf_token=self._signer.csrf_token(session),
            signed_request=self._signer.sign_request(
                _code_query(found.user_code), session, user.user_id, nonce
            ),
        )

    def routes(self) -> list[Route]:
        return [
            Route(VERIFICATION_PATH, self.show, methods=["GET"]),
            Route(VERIFICATION_PATH, self.post, methods=["POST"]),
        ]


def _typed(value: str) -> str:
    return value.strip()[:_MAX_TYPED]


def _code_query(user_code: str) -> str:
    return urlencode({"user_code": user_code})


def _page_url(user_code: str) -> str:
    return f"{VERIFICATION_PATH}?{_code_query(user_code)}"


def _signed_code(query: str) -> str:
    params, _ = parse_query(query.encode("latin-1"))
    return params.get("user_code", "")
