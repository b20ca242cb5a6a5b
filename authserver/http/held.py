"""Requests a connection holds back from uvicorn until their body is in, to answer them itself
(authserver.http.protocol): what answers them, what stands in for uvicorn's cycle meanwhile,
and what their answers share with uvicorn's (the client's address behind a trusted proxy, a
failure's 500, a response in one write, how an answer begins).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Protocol

from starlette.types import Scope
from uvicorn.config import Config
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.httptools_impl import STATUS_LINE

from authserver.answer import Answer


class HeldAnswers(Protocol):
    """What answers the requests a connection holds (authserver.http.oauth_posts.OAuthPosts)."""

    @property
    def held_paths(self) -> frozenset[bytes]: ...

    @property
    def max_body(self) -> int:
        """Bytes of body held back at most; past it uvicorn gets the request."""

    def answer_now(self, scope: Scope, body: bytes, write: Callable[[Answer, bytes], None]) -> bool:
        """Answered from memory, at once (else nothing written)?"""

    async def answer_held(
        self, scope: Scope, body: bytes, write: Callable[[Answer, bytes], None]
    ) -> None:
        """Answer the full way; ``write`` the answer once."""

    def left(self, scope: Scope, since: float) -> None:
        """A held request's client left before its body was in."""


class Answering:
    """Stands in for uvicorn's cycle while a held request is answered in a task of ours: what
    uvicorn reads of a cycle makes it queue a pipelined request behind this one, tell this one
    its client left, and close the connection after it on shutdown."""

    __slots__ = ("disconnected", "keep_alive", "response_complete", "response_started")

    def __init__(self) -> None:
        self.disconnected = False
        self.keep_alive = True
        self.response_started = False
        self.response_complete = False

    @property
    def message_event(self) -> Answering:
        return self  # uvicorn sets a cycle's event when the client leaves: nothing waits here

    def set(self) -> None:
        pass


FAILED = Answer(  # as uvicorn answers an app that failed before it answered
    500,
    [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"21")],
    b"Internal Server Error",
)


class OneWrite:
    """The transport a response's cycle writes to: the head is held back until the first part
    of the body, so a whole answer leaves in one write instead of two. uvicorn writes the
    head at ``http.response.start`` and each body part at once; two writes are two system
    calls and two segments the client wakes for, about a tenth of a small answer's cost
    (bench/README.md, step 10). Every body message of a response to anything but HEAD is a
    write (perhaps empty), and a response cut short closes the transport, so a held head is
    never left behind."""

    __slots__ = ("_head", "_transport", "_written")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._head = b""
        self._written = False  # the head went out; every write passes now

    def write(self, data: bytes) -> None:
        if self._written:
            self._transport.write(data)
        elif not self._head:
            self._head = data
        else:
            self._written = True
            self._transport.write(self._head + data)

    def close(self) -> None:
        if not self._written and self._head:
            self._written = True
            self._transport.write(self._head)
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()


class AnswerStarts:
    """The status line and uvicorn's default headers, as bytes, as each answer written outside
    uvicorn's cycle begins: kept per status for one listener, and made again when uvicorn
    renews its list of default headers (each second, for the date)."""

    __slots__ = ("_known",)

    def __init__(self) -> None:
        self._known: dict[int, tuple[list[tuple[bytes, bytes]], bytes]] = {}

    def __call__(self, status: int, defaults: list[tuple[bytes, bytes]]) -> bytes:
        known = self._known.get(status)
        if known is not None and known[0] is defaults:
            return known[1]
        start = b"".join([STATUS_LINE[status], *(b"%s: %s\r\n" % pair for pair in defaults)])
        self._known[status] = (defaults, start)
        return start


@functools.cache
def proxy_headers(config: Config) -> ProxyHeadersMiddleware | None:
    """uvicorn's own rewriting of a trusted proxy's X-Forwarded-For and -Proto, as it wraps
    the app with it, for the requests answered outside that app (one per listener)."""
    if not config.proxy_headers:
        return None
    return ProxyHeadersMiddleware(nothing, trusted_hosts=config.forwarded_allow_ips)


async def nothing(*args: object) -> None:
    """An ASGI app (and receive, and send) that does nothing: the middleware only edits the
    scope it passes on."""
