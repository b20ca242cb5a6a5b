"""The token, revocation, introspection and device authorization endpoints, served as raw ASGI.

They are the hot paths: every Phraseanet API request is introspected, and service clients
fetch tokens constantly. So they skip Starlette's router, middleware, request and response
objects: a dict lookup on the exact path, the three headers they read, and the answer. Most
of their requests skip uvicorn's cycle too: the connection holds a plain kept-alive POST to
one of them until its body is in (authserver.http.protocol), then asks ``answer_now`` (memory)
and else ``answer_held`` (the same path as through ASGI, in a task of its own). The others come
through ``__call__`` as ASGI. Everything else on the public listener goes on to the Starlette
app.

This module is the HTTP intake: it checks what RFC 6749 asks of the request itself (POST, no
query, a bounded urlencoded UTF-8 body, one client authentication) and hands the parsed
request to the bridge (authserver.oauth.bridge).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from authserver.answer import Answer
from authserver.errors import InvalidRequest, ProtocolError
from authserver.http.body import read_asgi_body
from authserver.http.deadlines import TOO_SLOW, Deadlines
from authserver.http.errors import failure
from authserver.http.observe import REQUEST_ID, Observer
from authserver.logs import request_id
from authserver.oauth.bridge import Bridge, TokenRequest
from authserver.oauth.flow import Endpoint
from authserver.oauth.memory import MemoryIntrospection
from authserver.oauth.params import client_credentials, parse_form
from authserver.oauth.responses import error_of, oauth_error

log = logging.getLogger("authserver")

MAX_BODY = 16 * 1024  # bytes; an OAuth form is a few hundred
FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True, slots=True)
class Route:
    """The matched path template, as the access log and the metrics name it."""

    path: str
    endpoint: Endpoint


ROUTES = {
    route.path: route
    for route in (
        Route("/oauth2/token", "token"),
        Route("/api/oauthv2/token", "token"),  # Phraseanet's path for old clients
        Route("/oauth2/revoke", "revoke"),
        Route("/oauth2/introspect", "introspect"),
        Route("/oauth2/device_authorization", "device"),  # RFC 8628 §3.1
    )
}

_INTROSPECT = ROUTES["/oauth2/introspect"]
_HELD_PATHS = frozenset(path.encode() for path in ROUTES)
_FORM_BYTES = FORM.encode()
# An introspection body with nothing to decode: what parse_form would make of it, directly.
_PLAIN_INTROSPECTION = re.compile(
    rb"token=([A-Za-z0-9._~=-]{1,4096})(?:&token_type_hint=(access_token|refresh_token))?"
)
_READ = frozenset({b"content-type", b"content-length", b"authorization"})

_METHOD_NOT_ALLOWED = oauth_error(
    405, "method_not_allowed", "Method Not Allowed", [(b"allow", b"POST")]
)


async def send_answer(send: Send, answer: Answer, *extra: tuple[bytes, bytes]) -> None:
    """An answer, in the two ASGI messages of a response."""
    headers = [*answer.headers, *extra] if extra else answer.headers
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})


CLIENT_CLOSED = 499  # the status the access log and metrics give a request whose client left


class OAuthPosts:
    def __init__(
        self,
        app: ASGIApp,
        bridge: Bridge,
        observer: Observer,
        *,
        deadlines: Deadlines,
        memory: MemoryIntrospection | None = None,
    ) -> None:
        self.app = app  # everything else
        self.bridge = bridge
        self.memory = memory if memory is not None and memory.enabled else None
        self.observer = observer  # what ObserveMiddleware does, done here without wrapping send
        self.deadlines = deadlines

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = ROUTES.get(scope["path"]) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return

        async def deliver(answer: Answer, raw_id: bytes) -> None:
            await send_answer(send, answer, (REQUEST_ID, raw_id))

        await self._respond(scope, route, receive, deliver)

    async def answer_held(
        self, scope: Scope, body: bytes, write: Callable[[Answer, bytes], None]
    ) -> None:
        """Answer a complete request the connection held (authserver.http.protocol) the full
        way, as ``__call__`` does, through ``write(answer, request id)``: the same path with
        the body in hand, without uvicorn's cycle. Called for a POST to one of ``held_paths``
        that ``answer_now`` did not answer."""

        async def deliver(answer: Answer, raw_id: bytes) -> None:
            write(answer, raw_id)

        await self._respond(scope, ROUTES[scope["path"]], body, deliver)

    async def _respond(
        self,
        scope: Scope,
        route: Route,
        body: bytes | Receive,
        deliver: Callable[[Answer, bytes], Awaitable[None]],
    ) -> None:
        scope["route"] = route
        rid, raw_id = self.observer.request_id(scope)
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500
        client_id: str | None = None
        try:
            answer, client_id = await self._answer(scope, body, route.endpoint)
            if answer is None:
                status = CLIENT_CLOSED
            else:
                status = answer.status
                await deliver(answer, raw_id)
        finally:
            self.observer.done(scope, rid, route.path, status, started, client_id)
            request_id.reset(token)

    def answer_now(self, scope: Scope, body: bytes, write: Callable[[Answer, bytes], None]) -> bool:
        """Answer a complete introspection request that memory settles
        (authserver.oauth.memory) through ``write(answer, request id)``, at once: no task, no
        await. False, with nothing written, noted or counted, for any other: the ASGI app
        answers it. Called by the connection (authserver.http.protocol) once the body is in,
        for a POST to one of ``held_paths`` with no query and at most ``max_body`` of body.
        """
        memory = self.memory
        if memory is None or scope["path"] != _INTROSPECT.path:
            return False
        started = time.perf_counter()
        authorization = form = None
        for name, value in scope["headers"]:
            if name == b"authorization" and authorization is None:
                authorization = value
            elif name == b"content-type" and form is None:
                form = value == _FORM_BYTES
        if not form or authorization is None:
            return False  # any other content type, or none, or no Basic: the full path
        plain = _PLAIN_INTROSPECTION.fullmatch(body)
        if plain is None:
            try:
                params = parse_form(body)
            except ProtocolError:
                return False  # the full path answers the error
        else:  # the usual body, with nothing to decode
            params = {"token": plain.group(1).decode()}
            if plain.group(2) is not None:
                params["token_type_hint"] = plain.group(2).decode()
        answered = memory.answer(authorization, params)
        if answered is None:
            return False
        answer, client_id = answered
        rid, raw_id = self.observer.request_id(scope)
        write(answer, raw_id)
        self.observer.done(scope, rid, _INTROSPECT.path, answer.status, started, client_id)
        return True

    def left(self, scope: Scope, since: float) -> None:
        """A request held for ``answer_now`` whose client left first: its access line and
        metrics, as ``__call__`` gives one (499)."""
        rid, _ = self.observer.request_id(scope)
        self.observer.done(scope, rid, ROUTES[scope["path"]].path, CLIENT_CLOSED, since)

    @property
    def held_paths(self) -> frozenset[bytes]:
        """The raw paths whose requests the connection holds until their body is in, for
        ``answer_now`` and then ``answer_held``: every endpoint of this module."""
        return _HELD_PATHS

    @property
    def max_body(self) -> int:
        """Bytes of body past which no request is answered now (the full path refuses it)."""
        return MAX_BODY

    async def _answer(
        self, scope: Scope, body: bytes | Receive, endpoint: Endpoint
    ) -> tuple[Answer | None, str | None]:
        """The answer (None: the client left before its body was in) and the caller's client
        id; ``body`` is the body, or what receives it."""
        if scope["method"] != "POST":
            return _METHOD_NOT_ALLOWED, None
        task = self.deadlines.enter()
        try:
            request = await _intake(scope, body, endpoint)
            handled = await self.bridge.handle(request)
        except ClientDisconnect:
            return None, None  # nobody to answer; nothing was stored for a request not read
        except ProtocolError as exc:
            return error_of(exc), None
        except asyncio.CancelledError:
            if self.deadlines.cut_off(task):
                log.warning("request cut off after %s s", self.deadlines.seconds)
                return TOO_SLOW, None
            raise
        except Exception as exc:
            failed = failure(scope["method"], scope["path"], exc)
            return (failed if isinstance(failed, Answer) else error_of(failed)), None
        finally:
            self.deadlines.leave(task)
        return handled.answer, handled.client_id


async def _intake(scope: Scope, body: bytes | Receive, endpoint: Endpoint) -> TokenRequest:
    wanted: dict[bytes, str] = {}
    for name, value in scope["headers"]:
        # The first of a repeated header counts, as with Starlette's Headers.get.
        if name in _READ and name not in wanted:
            wanted[name] = value.decode("latin-1")
    if scope["query_string"]:
        raise InvalidRequest("URL query parameters are not allowed")
    media_type, _, options = wanted.get(b"content-type", "").partition(";")
    charset = options.strip().lower()
    if media_type.strip().lower() != FORM or charset not in ("", "charset=utf-8"):
        raise InvalidRequest(f"the body must be {FORM} (UTF-8)")
    if not isinstance(body, bytes):
        try:
            body = await read_asgi_body(body, wanted.get(b"content-length"), MAX_BODY)
        except HTTPException:
            raise InvalidRequest(f"the body must be at most {MAX_BODY} bytes") from None
    params = parse_form(body)
    credentials = client_credentials(wanted.get(b"authorization"), params)
    client = scope.get("client")
    return TokenRequest(endpoint, params, credentials, client[0] if client else "unknown")
