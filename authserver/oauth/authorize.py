"""The authorization endpoint's pages: sign in, consent, the oob code, sign out.

GET validates the request with oauthlib (through the bridge) and shows the page the user needs
next; the forms POST back to the same URL. Form posts always answer 303 (RFC 9700 §4.12), and
every form carries a CSRF token bound to the browser session and a signed copy of the
validated request, so a POST cannot change the client, redirect URI, scopes or PKCE challenge.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from urllib.parse import urlencode, urlsplit

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from authserver import scopes as scope_names
from authserver.errors import NotFound
from authserver.models import User
from authserver.oauth import bridge
from authserver.oauth.bridge import Checked, ErrorPage, ErrorRedirect
from authserver.oauth.flow import Flow
from authserver.oauth.params import BadRequest, parse_form, parse_query
from authserver.resources import Resources
from authserver.validation import login_throttle_key
from authserver.web.body import media_type, read_body
from authserver.web.session import REQUEST_TTL, Session, cookie_name

MAX_FORM = 16 * 1024  # bytes; also bounds the password argon2 is given


def _res(request: Request) -> Resources:
    res: Resources = request.state.res
    return res


async def authorize(request: Request) -> Response:
    """GET: show the next page for this authorization request, or answer it."""
    res = _res(request)
    query: bytes = request.scope["query_string"]
    session = _session(res, request)
    user = await _signed_in_user(res, session)
    try:
        flow = await bridge.load_authorization(res, query, user)
        checked = bridge.check_authorization(res, flow, query)
    except ErrorPage as exc:
        return _error_page(res, exc)
    if isinstance(checked, ErrorRedirect):
        return RedirectResponse(checked.location, 302)
    prompts = set(parse_query(query)[0].get("prompt", "").split())
    if user is None or "login" in prompts:
        if "none" in prompts:
            return _redirect_or_page(
                res, lambda: bridge.error_for(res, checked, "login_required", "sign-in needed")
            )
        login_query = _without_prompt(query, "login")
        return _login_page(res, request, session, user, login_query, checked)
    grant = await res.store.active_grant(user.user_id, checked.client.client_id)
    remembered = grant is not None and set(checked.scopes) <= set(grant[1])
    # RFC 6749 §10.2: only a confidential client, authenticated when it redeems the code, is
    # re-approved silently; the user of a public client is asked every time.
    if remembered and not checked.client.is_public and "consent" not in prompts:
        return await _issue(res, flow, query, checked, 302)
    if "none" in prompts:
        return _redirect_or_page(
            res, lambda: bridge.error_for(res, checked, "consent_required", "consent needed")
        )
    assert session is not None  # a signed-in user came with a session
    return await _consent_page(res, request, session, user, query, checked)


async def authorize_post(request: Request) -> Response:
    """POST: the login form or the consent form."""
    res = _res(request)
    checked_form = await _protected_form(res, request)
    if isinstance(checked_form, Response):
        return checked_form
    form, session = checked_form
    user = await _signed_in_user(res, session)
    signed = res.signer.load_request(
        form.get("request"), session, user.user_id if user is not None else None
    )
    if signed is None:
        return res.pages.error(
            400, "This form cannot be used", "The form has expired or was changed."
        )
    query = signed.query.encode("latin-1")
    action = form.get("action")
    if action == "login":
        return await _login(res, request, session, user, form, query)
    if action == "consent" and signed.nonce is not None and user is not None:
        return await _consent(res, user, form, query, signed.nonce)
    return res.pages.error(400, "This form cannot be used", "The form is incomplete.")


async def _login(
    res: Resources,
    request: Request,
    session: Session,
    current: User | None,
    form: dict[str, str],
    query: bytes,
) -> Response:
    settings = res.settings
    username, password = form.get("username", ""), form.get("password", "")
    address = request.client.host if request.client is not None else "unknown"
    account_key, address_key = login_throttle_key(username), f"address:{address}"
    if await res.store.login_locked([account_key, address_key]):
        paused = res.pages.error(
            429, "Too many attempts", "Sign-in is paused for a while. Try again later."
        )
        paused.headers["Retry-After"] = str(settings.login_lockout)
        return paused
    try:
        flow = await bridge.load_authorization(res, query, None)
        checked = bridge.check_authorization(res, flow, query)
    except ErrorPage as exc:
        return _error_page(res, exc)
    if isinstance(checked, ErrorRedirect):
        return _redirect(checked)
    user = await res.store.user_by_login(username) if username else None
    # Unknown users are verified against a dummy hash: the answer takes as long either way.
    verified = await res.passwords.verify(user.password_hash if user else None, password)
    if user is None or not verified.ok:
        await res.store.record_login_failure(
            account_key, settings.login_max_failures, settings.login_lockout
        )
        await res.store.record_login_failure(
            address_key, settings.login_max_failures_per_address, settings.login_lockout
        )
        await res.store.audit(
            "login.failed", client_id=checked.client.client_id, detail={"via": "login_page"}
        )
        message = "The login or password is not right."
        return _login_page(res, request, session, current, query, checked, 400, username, message)
    await res.store.clear_login_failures(account_key)
    if verified.new_hash is not None:
        await res.store.set_password_hash(user.user_id, verified.new_hash)
    # A new session id at sign-in: a session fixed before login is worth nothing after it.
    await res.store.delete_session(session.digest)
    fresh = Session.new()
    await res.store.insert_session(fresh.digest, user.user_id, settings.session_ttl)
    response = RedirectResponse(f"{request.url.path}?{query.decode('latin-1')}", 303)
    _set_session(res, response, fresh)
    return response


async def _consent(
    res: Resources, user: User, form: dict[str, str], query: bytes, nonce: str
) -> Response:
    decision = form.get("decision")
    if decision not in ("allow", "deny"):
        return res.pages.error(400, "This form cannot be used", "Choose Allow or Deny.")
    try:
        flow = await bridge.load_authorization(res, query, user)
        checked = bridge.check_authorization(res, flow, query)
    except ErrorPage as exc:
        return _error_page(res, exc)
    if isinstance(checked, ErrorRedirect):
        return _redirect(checked)
    # One form, one answer: a second submission (double click, replay) issues nothing.
    if not await res.store.claim_consent_nonce(nonce, REQUEST_TTL):
        return res.pages.error(
            400, "This form was already used", "Go back to the application and start again."
        )
    if decision == "deny":
        await res.store.audit(
            "consent.denied", client_id=checked.client.client_id, user_id=user.user_id
        )
        return _redirect_or_page(res, lambda: bridge.deny(res, checked))
    return await _issue(res, flow, query, checked, 303)


async def _issue(
    res: Resources, flow: Flow, query: bytes, checked: Checked, status: int
) -> Response:
    try:
        issued = await bridge.issue_code(res, flow, query, checked)
    except ErrorPage as exc:
        return _error_page(res, exc)
    if issued.code is not None:
        return res.pages.render(
            "oob.html",
            client=checked.client,
            code=issued.code,
            minutes=max(1, res.settings.code_ttl // 60),
        )
    if issued.location is None:
        return res.pages.error(400, "This request cannot be completed", "Start again.")
    return RedirectResponse(issued.location, status)


def _login_page(
    res: Resources,
    request: Request,
    session: Session | None,
    user: User | None,
    query: bytes,
    checked: Checked,
    status: int = 200,
    username: str = "",
    message: str = "",
) -> Response:
    session = session or Session.new()
    user_id = user.user_id if user is not None else None
    response = res.pages.render(
        "login.html",
        status,
        client=checked.client,
        action=request.url.path,
        csrf_token=res.signer.csrf_token(session),
        signed_request=res.signer.sign_request(query.decode("latin-1"), session, user_id),
        username=username,
        message=message,
    )
    _set_session(res, response, session)
    return response


async def _consent_page(
    res: Resources,
    request: Request,
    session: Session,
    user: User,
    query: bytes,
    checked: Checked,
) -> Response:
    try:
        owner = await res.store.get_user(checked.client.owner_id)
        owner_name = owner.display_name or owner.login
    except NotFound:
        owner_name = ""
    nonce = secrets.token_urlsafe(16)
    return res.pages.render(
        "consent.html",
        client=checked.client,
        owner=owner_name,
        scopes=[scope_names.SCOPES[name] for name in checked.scopes],
        user_name=user.display_name or user.login,
        action=request.url.path,
        csrf_token=res.signer.csrf_token(session),
        signed_request=res.signer.sign_request(
            query.decode("latin-1"), session, user.user_id, nonce
        ),
    )


async def logout(request: Request) -> Response:
    res = _res(request)
    session = _session(res, request)
    if session is None or await _signed_in_user(res, session) is None:
        return res.pages.render("logout.html", signed_out=True, action=request.url.path)
    return res.pages.render(
        "logout.html",
        signed_out=False,
        action=request.url.path,
        csrf_token=res.signer.csrf_token(session),
    )


async def logout_post(request: Request) -> Response:
    res = _res(request)
    checked_form = await _protected_form(res, request)
    if isinstance(checked_form, Response):
        return checked_form
    _, session = checked_form
    await res.store.delete_session(session.digest)
    response = RedirectResponse(request.url.path, 303)
    secure = _secure(res)
    response.delete_cookie(
        cookie_name(secure), path="/", secure=secure, httponly=True, samesite="lax"
    )
    return response


async def stylesheet(request: Request) -> Response:
    return _res(request).pages.stylesheet_response()


async def _protected_form(
    res: Resources, request: Request
) -> tuple[dict[str, str], Session] | Response:
    """A form posted from our own page in this browser session, or the page refusing it."""
    try:
        form = await _read_form(request)
    except BadRequest as exc:
        return res.pages.error(400, "This form cannot be used", exc.description)
    if not _same_origin(res, request):
        return res.pages.error(403, "This form cannot be used", "The form came from elsewhere.")
    session = _session(res, request)
    if session is None:
        return res.pages.error(
            403, "Your session has ended", "Go back to the application and start again."
        )
    if "csrf_token" not in form:
        return res.pages.error(400, "This form cannot be used", "The form is incomplete.")
    if not res.signer.csrf_ok(form["csrf_token"], session):
        return res.pages.error(
            403, "This form cannot be used", "The form was not made for this browser session."
        )
    return form, session


def _session(res: Resources, request: Request) -> Session | None:
    return res.signer.load_session(request.cookies.get(cookie_name(_secure(res))))


async def _signed_in_user(res: Resources, session: Session | None) -> User | None:
    return None if session is None else await res.store.session_user(session.digest)


def _same_origin(res: Resources, request: Request) -> bool:
    """Forms are posted from our own pages; a browser says where a cross-site post came from."""
    origin = request.headers.get("origin")
    if origin is None:
        return True  # CSRF tokens still apply; older browsers omit Origin on same-site posts
    if origin == "null":
        # Our pages say Referrer-Policy: no-referrer, under which browsers send "Origin: null"
        # even on their own same-origin form posts (Fetch, "serializing a request origin");
        # Sec-Fetch-Site still tells a same-origin post from a sandboxed or cross-site one.
        return request.headers.get("sec-fetch-site", "same-origin") == "same-origin"
    issuer = urlsplit(res.settings.issuer)
    return origin == f"{issuer.scheme}://{issuer.netloc}"


async def _read_form(request: Request) -> dict[str, str]:
    if media_type(request) != "application/x-www-form-urlencoded":
        raise BadRequest("the form must be sent as application/x-www-form-urlencoded")
    try:
        body = await read_body(request, MAX_FORM)
    except HTTPException:  # too large: refused before any argon2 work
        raise BadRequest("the form is too large") from None
    return parse_form(body)


def _without_prompt(query: bytes, value: str) -> bytes:
    """The query with one prompt value removed, so signing in once satisfies prompt=login."""
    params, _ = parse_query(query)
    prompts = [prompt for prompt in params.get("prompt", "").split() if prompt != value]
    if prompts:
        params["prompt"] = " ".join(prompts)
    else:
        params.pop("prompt", None)
    return urlencode(params).encode()


def _set_session(res: Resources, response: Response, session: Session) -> None:
    secure = _secure(res)
    response.set_cookie(
        cookie_name(secure),
        res.signer.dump_session(session),
        max_age=res.settings.session_ttl,
        path="/",
        secure=secure,
        httponly=True,
        samesite="lax",
    )


def _secure(res: Resources) -> bool:
    return res.settings.issuer.startswith("https://")


def _redirect(target: ErrorRedirect) -> Response:
    return RedirectResponse(target.location, 303)


def _redirect_or_page(res: Resources, make: Callable[[], ErrorRedirect]) -> Response:
    """An error redirect, or a page when there is nowhere to redirect to (the oob URN)."""
    try:
        return _redirect(make())
    except ErrorPage as exc:
        return _error_page(res, exc)


def _error_page(res: Resources, exc: ErrorPage) -> Response:
    return res.pages.error(400, "This request cannot be completed", exc.message)


ROUTES = [
    Route("/oauth2/authorize", authorize, methods=["GET"]),
    Route("/oauth2/authorize", authorize_post, methods=["POST"]),
    Route("/api/oauthv2/authorize", authorize, methods=["GET"]),  # Phraseanet's path
    Route("/api/oauthv2/authorize", authorize_post, methods=["POST"]),
    Route("/oauth2/logout", logout, methods=["GET"]),
    Route("/oauth2/logout", logout_post, methods=["POST"]),
    Route("/oauth2/assets/authserver.css", stylesheet, methods=["GET"]),
]
