"""Signing out of the authorization server (RP-Initiated Logout 1.0 when an application sends
the user here), and the stylesheet every page links to.

GET never signs out: the user confirms with a form bound to the browser session (§2: an
application's request alone must not end the session, or any page could end it). A user who
is not signed in is sent straight on to the application's registered URI, if it named one.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from authserver.errors import ErrorPage, InvalidRequest
from authserver.http.browser import Browser
from authserver.oauth.params import parse_form
from authserver.oidc.logout import PARAMETERS, LogoutRequest, Logouts


class LogoutPages:
    def __init__(self, browser: Browser, logouts: Logouts) -> None:
        self._browser = browser
        self._pages = browser.pages
        self._logouts = logouts

    async def logout(self, request: Request) -> Response:
        try:
            asked = await self._logouts.check(_query(request))
        except ErrorPage as exc:
            return self._pages.error(400, "This sign-out request cannot be used", exc.description)
        browser = self._browser
        session = browser.session(request)
        if session is None or await browser.user(session) is None:
            destination = asked.destination()
            if destination is not None:
                return RedirectResponse(destination, 303)
            return self._pages.render("logout.html", signed_out=True, action=request.url.path)
        return self._pages.render(
            "logout.html",
            signed_out=False,
            action=request.url.path,
            csrf_token=browser.signer.csrf_token(session),
            client=asked.client,
            owner="" if asked.client is None else await browser.owner_name(asked.client),
            redirect_uri=asked.redirect_uri or "",
            state=asked.state or "",
        )

    async def logout_post(self, request: Request) -> Response:
        checked_form = await self._browser.protected_form(request)
        if isinstance(checked_form, Response):
            return checked_form
        form, session = checked_form
        # The form carries what the GET checked; checked again, it can only name a URI the
        # application registered.
        asked_for = {
            name: form[name]
            for name in ("client_id", "post_logout_redirect_uri", "state")
            if form.get(name)
        }
        try:
            asked = await self._logouts.check(asked_for)
        except ErrorPage:
            asked = LogoutRequest(None, None, None)
        response = RedirectResponse(asked.destination() or request.url.path, 303)
        await self._browser.sign_out(session, response)
        return response

    async def stylesheet(self, request: Request) -> Response:
        return self._pages.stylesheet_response()

    def routes(self) -> list[Route]:
        return [
            Route("/oauth2/logout", self.logout, methods=["GET"]),
            Route("/oauth2/logout", self.logout_post, methods=["POST"]),
            Route("/oauth2/assets/authserver.css", self.stylesheet, methods=["GET"]),
        ]


def _query(request: Request) -> dict[str, str]:
    """The parameters this page reads, each at most once (others are ignored, §2)."""
    try:
        params = parse_form(request.scope["query_string"])
    except InvalidRequest as exc:
        raise ErrorPage(exc.description) from None
    return {name: value for name, value in params.items() if name in PARAMETERS}
