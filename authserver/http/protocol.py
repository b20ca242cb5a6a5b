"""uvicorn's HTTP protocol (httptools), with the limits a listener facing the internet needs.

uvicorn bounds neither how long a client may take to send its request nor how large its head
may be, and accepts connections without end: a client that sends nothing, a header byte per
second or half a body holds a connection (and a file descriptor) for as long as it likes
(checklist R-19, SC6). Here every connection has
- ``header_timeout`` seconds to send a request's head, from the first byte of it (or from the
  connection, for its first request), else it gets 408 and is closed;
- ``body_timeout`` seconds more to send the body, else the same;
- at most ``max_header_bytes`` of request line and headers and ``max_headers`` headers, else
  431 (RFC 6585 §5) and closed;
and a listener holds at most ``max_connections`` at once: one more is answered 503 and closed.

A request that memory alone can answer (an introspection of a cached token, see
``AnswersNow``) is answered right here, once its body is in, in one write and without an ASGI
task: for those, uvicorn's cycle (a task, a scope, two writes, the app's layers) cost more than
the answer (bench/README.md, step 7). Its head is held back from uvicorn until then; any request
memory does not settle is handed on as it came, body included. The responses uvicorn writes for
the others leave in one write too (``OneWrite``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.types import Scope
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from authserver.answer import Answer

log = logging.getLogger("authserver")


class AnswersNow(Protocol):
    """What answers complete requests from memory (authserver.http.oauth_posts.OAuthPosts)."""

    @property
    def now_paths(self) -> frozenset[bytes]: ...

    @property
    def max_body(self) -> int:
        """Bytes of body held back at most; past it uvicorn gets the request."""

    def answer_now(
        self, scope: Scope, body: bytes, write: Callable[[Answer, bytes], None]
    ) -> bool: ...

    def left(self, scope: Scope, since: float) -> None:
        """A held request's client left before its body was in."""


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout: float  # seconds to send a request's head
    body_timeout: float  # seconds more to send its body
    max_header_bytes: int  # request line and headers
    max_headers: int
    max_connections: int  # per listener


def _refusal(status: int, reason: str) -> bytes:
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(reason)}\r\nconnection: close\r\n\r\n{reason}"
    ).encode("ascii")


_TIMEOUT = _refusal(408, "Request Timeout")
_TOO_LARGE = _refusal(431, "Request Header Fields Too Large")
_FULL = _refusal(503, "Service Unavailable")


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


class GuardedProtocol(HttpToolsProtocol):
    # Set on the subclass each listener gets (``guarded``).
    limits: ConnectionLimits
    now: AnswersNow | None = None
    now_paths: frozenset[bytes] = frozenset()
    held_body = 0  # bytes: now.max_body

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._head_count = 0
        self._refused = False
        self._held: bytearray | None = None  # the body of a request held back from uvicorn
        self._held_since = 0.0  # perf_counter when its head was in
        self._written = False  # the held request's answer is out

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            self._refused = True
            transport.write(_FULL)
            transport.close()
            return
        super().connection_made(transport)
        self._arm(self.limits.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._held is not None and self.now is not None:
            self.now.left(self._asgi_scope(), self._held_since)  # noted as the full path does
            self._held = None
        if self._refused and self.transport is None:
            return  # refused at the door: never counted among the connections
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._deadline is None and (self.cycle is None or self.cycle.response_complete):
            # The first bytes of a next request on a kept-alive connection: its head must
            # follow within the limit too.
            self._arm(self.limits.header_timeout)
        super().data_received(data)

    def on_message_begin(self) -> None:
        self._head_bytes = 0
        self._head_count = 0
        # A request answered from memory ends inside data_received, so the next one may begin
        # in the same read: no keep-alive timer may run under it (uvicorn's own answers end
        # later, in their task), and its head has the usual time to arrive.
        self._unset_keepalive_if_required()
        if self._deadline is None and (self.cycle is None or self.cycle.response_complete):
            self._arm(self.limits.header_timeout)  # as data_received does for a next request
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        if self._grown(len(url)):
            return
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_count += 1
        if self._grown(len(name) + len(value) + 4):
            return
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        self._arm(self.limits.body_timeout)
        if self._may_answer_now():
            self._held = bytearray()
            self._held_since = time.perf_counter()
            # What uvicorn would put in the scope now (it does again if the request is handed on).
            path = self.root_path + self.url.decode("ascii")
            self.scope.update(  # type: ignore[call-arg]
                method="POST", path=path, raw_path=path.encode(), query_string=b""
            )
            return
        self._start_cycle()

    def on_body(self, body: bytes) -> None:
        if self._refused:
            return
        held = self._held
        if held is None:
            super().on_body(body)
            return
        held += body
        if len(held) > self.held_body:
            self._hand_on(bytes(held))

    def on_message_complete(self) -> None:
        if self._refused:
            return
        self._disarm()  # the request is in: what the app takes is not the client's doing
        if self._held is not None:
            body = bytes(self._held)
            if self._answered_now(body):
                self._held = None
                return
            self._hand_on(body)
        super().on_message_complete()

    def shutdown(self) -> None:
        if self._held is not None:
            # A request on its way is answered while draining, as any other.
            self._hand_on(bytes(self._held))
        super().shutdown()

    def _may_answer_now(self) -> bool:
        """Might memory answer this request once its body is in? Only a plain one: a path it
        may answer, POST, HTTP/1.1 kept alive, no 100-continue, no request before it still in
        progress (pipelined requests are answered in order by uvicorn)."""
        parser = self.parser
        return (
            self.url in self.now_paths
            and parser.get_method() == b"POST"
            and parser.get_http_version() == "1.1"
            and parser.should_keep_alive()
            and not self.expect_100_continue
            and (self.cycle is None or self.cycle.response_complete)
            and not self.flow.write_paused  # a client not reading its answers waits in uvicorn
            and self.limit_concurrency is None
            and self._fits()
        )

    def _answered_now(self, body: bytes) -> bool:
        now = self.now
        if now is None:
            return False
        self._written = False
        try:
            return now.answer_now(self._asgi_scope(), body, self._write_answer)
        except Exception:
            # Never a broken connection for it: the full path answers (and logs what it meets),
            # unless the answer is already out.
            log.exception("answering from memory failed")
            return self._written

    def _asgi_scope(self) -> Scope:
        # uvicorn's scope type is a TypedDict; an ASGI app sees a plain mapping.
        scope: Scope = self.scope  # type: ignore[assignment]
        return scope

    def _write_answer(self, answer: Answer, request_id: bytes) -> None:
        """The whole response in one write, as uvicorn would have sent it in two; then what
        uvicorn does after a response (keep-alive timer, next pipelined request)."""
        parts = [STATUS_LINE[answer.status]]
        for name, value in (*self.server_state.default_headers, *answer.headers):
            parts += (name, b": ", value, b"\r\n")
        parts += (b"x-request-id: ", request_id, b"\r\n\r\n", answer.body)
        self.transport.write(b"".join(parts))
        self._written = True
        self.on_response_complete()

    def _start_cycle(self) -> None:
        """uvicorn's cycle for the request whose head is in, writing through ``OneWrite``
        unless the client waits for ``100 Continue`` (that write may not wait) or asked for
        no body (HEAD: nothing would follow the head)."""
        super().on_headers_complete()
        cycle = self.cycle
        if (
            cycle is not None
            and cycle.scope is self.scope
            and not cycle.waiting_for_100_continue
            and self.scope["method"] != "HEAD"
        ):
            cycle.transport = OneWrite(self.transport)  # type: ignore[assignment]

    def _fits(self) -> bool:
        """Is the declared body (if declared) one worth holding? A larger one, or a malformed
        length, goes to uvicorn at once: the full path refuses it on its head alone."""
        for name, value in self.headers:
            if name == b"content-length":
                return value.isdigit() and int(value) <= self.held_body
        return True

    def _hand_on(self, body: bytes) -> None:
        """Give uvicorn the held request as if it had just arrived: its cycle and task, and
        ``body``, what was held of it."""
        self._held = None
        self._start_cycle()
        if body:
            super().on_body(body)

    def _grown(self, size: int) -> bool:
        """Count head bytes; refuse the request with 431 once over a limit."""
        if self._refused:
            return True
        self._head_bytes += size
        limits = self.limits
        if self._head_bytes > limits.max_header_bytes or self._head_count > limits.max_headers:
            self._refuse(_TOO_LARGE)
            return True
        return False

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._refuse, _TIMEOUT)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _refuse(self, answer: bytes) -> None:
        self._disarm()
        if self._refused or self.transport is None or self.transport.is_closing():
            return
        self._refused = True
        if self.cycle is None or self.cycle.response_complete or not self.cycle.response_started:
            self.transport.write(answer)
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # the app, if it started, is told the client is gone
        self.transport.close()


def guarded(limits: ConnectionLimits, now: AnswersNow | None = None) -> type[GuardedProtocol]:
    """The protocol class one listener runs, with its limits and what answers from memory."""
    answering: dict[str, Any] = {}
    if now is not None:
        answering = {"now": now, "now_paths": now.now_paths, "held_body": now.max_body}
    return type("GuardedProtocol", (GuardedProtocol,), {"limits": limits, **answering})
