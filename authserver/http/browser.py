"""What every page a person uses shares: the session cookie, sign-in and sign-out, and the
checks on every form they post (same origin, live session, CSRF token bound to it).

The cookie holds only a signed random id; the row in PostgreSQL says whether it is signed in
and as whom, so signing out ends a session on every replica.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from authserver.db.store import Store
from authserver.errors import InvalidRequest, NotFound, Overloaded
from authserver.http.body import media_type, read_body
from authserver.http.pages import Pages
from authserver.http.session import Session, Signer, cookie_name
from authserver.models import Client, User
from authserver.oauth.params import parse_form
from authserver.signin import SignInPolicy

MAX_FORM = 16 * 1024  # bytes; also bounds the password argon2 is given


class Browser:
    def __init__(
        self, store: Store, signer: Signer, pages: Pages, *, issuer: str, session_ttl: int
    ) -> None:
        self._store = store
        self.signer = signer
        self.pages = pages
        self._secure = issuer.startswith("https://")
        self._cookie = cookie_name(self._secure)
        issued = urlsplit(issuer)
        self._origin = f"{issued.scheme}://{issued.netloc}"
        self._session_ttl = session_ttl

    def session(self, request: Request) -> Session | None:
        return self.signer.load_session(request.cookies.get(self._cookie))

    async def user(self, session: Session | None) -> User | None:
        """Who this browser session is signed in as, if anyone."""
        signed_in = await self.signed_in(session)
        return None if signed_in is None else signed_in[0]

    async def signed_in(self, session: Session | None) -> tuple[User, datetime] | None:
        """Who this browser session is signed in as, and since when (OpenID's auth_time)."""
        return None if session is None else await self._store.sessions.user(session.digest)

    async def owner_name(self, client: Client) -> str:
        """Who publishes ``client``, as the pages that show an application name them."""
        try:
            owner = await self._store.users.get(client.owner_id)
        except NotFound:
            return ""
        return owner.display_name or owner.login

    async def check_password(
        self,
        policy: SignInPolicy,
        request: Request,
        form: dict[str, str],
        *,
        via: str,
        client_id: str,
    ) -> User | Response | None:
        """A login form's username and password through the sign-in policy: the user, None
        when they are not right, or the page that refuses to look (too busy, paused)."""
        try:
            result = await policy.attempt(
                form.get("username", ""),
                form.get("password", ""),
                address=client_address(request),
                via=via,
                client_id=client_id,
            )
        except Overloaded as exc:
            busy = self.pages.error(503, "Too busy", "Too many people are signing in. Try again.")
            busy.headers["Retry-After"] = str(exc.retry_after)
            return busy
        if result.paused_for is not None:
            paused = self.pages.error(
                429, "Too many attempts", "Sign-in is paused for a while. Try again later."
            )
            paused.headers["Retry-After"] = str(result.paused_for)
            return paused
        return result.user

    async def sign_in(self, session: Session, user: User) -> Session:
        """A new session id at sign-in: a session fixed before login is worth nothing after."""
        await self._store.sessions.delete(session.digest)
        fresh = Session.new()
        await self._store.sessions.insert(fresh.digest, user.user_id, ttl=self._session_ttl)
        return fresh

    async def sign_out(self, session: Session, response: Response) -> None:
        await self._store.sessions.delete(session.digest)
        response.delete_cookie(
            self._cookie, path="/", secure=self._secure, httponly=True, samesite="lax"
        )

    def set_cookie(self, response: Response, session: Session) -> None:
        response.set_cookie(
            self._cookie,
            self.signer.dump_session(session),
            max_age=self._session_ttl,
            path="/",
            secure=self._secure,
            httponly=True,
            samesite="lax",
        )

    async def protected_form(self, request: Request) -> tuple[dict[str, str], Session] | Response:
        """A form posted from our own page in this browser session, or the page refusing it."""
        pages = self.pages
        try:
            form = await _read_form(request)
        except InvalidRequest as exc:
            return pages.error(400, "This form cannot be used", exc.description)
        if not self._same_origin(request):
            return pages.error(403, "This form cannot be used", "The form came from elsewhere.")
        session = self.session(request)
        if session is None:
            return pages.error(
                403, "Your session has ended", "Go back to the application and start again."
            )
        if "csrf_token" not in form:
            return pages.error(400, "This form cannot be used", "The form is incomplete.")
        if not self.signer.csrf_ok(form["csrf_token"], session):
            return pages.error(
                403, "This form cannot be used", "The form was not made for this browser session."
            )
        return form, session

    def _same_origin(self, request: Request) -> bool:
        """Forms are posted from our own pages; a browser says where a cross-site post came
        from."""
        origin = request.headers.get("origin")
        if origin is None:
            return True  # CSRF tokens still apply; older browsers omit Origin on same-site posts
        if origin == "null":
            # Our pages say Referrer-Policy: no-referrer, under which browsers send "Origin:
            # null" even on their own same-origin form posts (Fetch, "serializing a request
            # origin"); Sec-Fetch-Site still tells a same-origin post from a cross-site one.
            return request.headers.get("sec-fetch-site", "same-origin") == "same-origin"
        return origin == self._origin


async def _read_form(request: Request) -> dict[str, str]:
    if media_type(request) != "application/x-www-form-urlencoded":
        raise InvalidRequest("the form must be sent as application/x-www-form-urlencoded")
    try:
        body = await read_body(request, MAX_FORM)
    except HTTPException:  # too large: refused before any argon2 work
        raise InvalidRequest("the form is too large") from None
    return parse_form(body)


def client_address(request: Request) -> str:
    """The address a request came from, as the sign-in policy and throttles count it."""
    return request.client.host if request.client is not None else "unknown"
