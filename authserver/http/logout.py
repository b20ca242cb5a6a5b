"""Signing out of the authorization server, and the stylesheet every page links to."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from authserver.http.browser import Browser


class LogoutPages:
    def __init__(self, browser: Browser) -> None:
        self._browser = browser
        self._pages = browser.pages

    async def logout(self, request: Request) -> Response:
        browser = self._browser
        session = browser.session(request)
        if session is None or await browser.user(session) is None:
            return self._pages.render("logout.html", signed_out=True, action=request.url.path)
        return self._pages.render(
            "logout.html",
            signed_out=False,
            action=request.url.path,
            csrf_token=browser.signer.csrf_token(session),
        )

    async def logout_post(self, request: Request) -> Response:
        checked_form = await self._browser.protected_form(request)
        if isinstance(checked_form, Response):
            return checked_form
        _, session = checked_form
        response = RedirectResponse(request.url.path, 303)
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
