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

A plain kept-alive POST to an OAuth endpoint (``HeldAnswers.held_paths``) is held back from
uvicorn until its body is in, and answered here: from memory at once when memory settles it
(an introspection of a cached token: bench/README.md, step 7), else the full way in a task of
ours (step 11); either answer leaves in one write. uvicorn's cycle (its scope, task, two writes
and the app's layers) cost more than such an answer. A request held back that turns out not to
be plain (a body over the limit, a shutdown before its body is in) is handed on to uvicorn as
it came, body included; the responses uvicorn writes leave in one write too (``OneWrite``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from starlette.types import Scope
from uvicorn.protocols.http.httptools_impl import (
    HttpToolsProtocol,
    RequestResponseCycle,
)

from authserver.answer import Answer
from authserver.http.held import (
    FAILED,
    Answering,
    AnswerStarts,
    HeldAnswers,
    OneWrite,
    nothing,
    proxy_headers,
)
from authserver.http.timeouts import ClientTimeout

log = logging.getLogger("authserver")


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


class GuardedProtocol(HttpToolsProtocol):
    # Set on the subclass each listener gets (``guarded``).
    limits: ConnectionLimits
    now: HeldAnswers | None = None
    held_paths: frozenset[bytes] = frozenset()
    held_body = 0  # bytes: now.max_body
    starts: AnswerStarts  # how each answer written here begins, per listener

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timeout = ClientTimeout(self.loop, self._timed_out)
        self._head_bytes = 0
        self._head_count = 0
        self._refused = False
        self._held: bytearray | None = None  # the body of a request held back from uvicorn
        self._held_since = 0.0  # perf_counter when its head was in
        self._written = False  # the held request's answer is out
        self._head_pending = False  # a request has begun and its head is not all in yet

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            self._refused = True
            transport.write(_FULL)
            transport.close()
            return
        super().connection_made(transport)
        self._timeout.arm(self.limits.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._timeout.close()
        if self._held is not None and self.now is not None:
            self.now.left(self._asgi_scope(), self._held_since)  # noted as the full path does
            self._held = None
        if self._refused and self.transport is None:
            return  # refused at the door: never counted among the connections
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        self._time_next_head()
        super().data_received(data)

    def on_message_begin(self) -> None:
        self._head_pending = True
        self._head_bytes = 0
        self._head_count = 0
        # A request answered from memory ends inside data_received, so the next one may begin
        # in the same read: no keep-alive timer may run under it (uvicorn's own answers end
        # later, in their task), and its head has the usual time to arrive.
        self._unset_keepalive_if_required()
        self._time_next_head()
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
        self._head_pending = False
        if self._refused:
            return
        self._timeout.arm(self.limits.body_timeout)
        if self._may_hold():
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
        self._timeout.disarm()  # the request is in: what the app takes is not the client's doing
        if self._held is not None:
            body = bytes(self._held)
            self._held = None
            if not self._answered_now(body):
                self._answer_held(body)
            return
        super().on_message_complete()
        cycle = self.cycle
        if (
            cycle is not None
            and cycle.response_complete
            and self.timeout_keep_alive_task is None
            and not self.transport.is_closing()
        ):
            # Answered before its body was all in: the last bytes stopped uvicorn's keep-alive
            # timer and its body timer is done, so the idle connection gets the timer again.
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

    def on_response_complete(self) -> None:
        super().on_response_complete()
        cycle = self.cycle
        if (
            self._head_pending
            and (cycle is None or cycle.response_complete)
            and not self.transport.is_closing()
        ):
            # The next request began before this answer went out, and its head is not all in:
            # uvicorn armed its keep-alive timer under it (its pipeline holds only complete
            # heads). The head timer bounds it instead. Not while a pipelined request just
            # started is answered: its answer comes first, and this runs again after it.
            self._unset_keepalive_if_required()
            if not self._timeout.armed:
                self._timeout.arm(self.limits.header_timeout)

    def shutdown(self) -> None:
        if self._held is not None:
            # A request on its way is answered while draining, as any other.
            self._hand_on(bytes(self._held))
        super().shutdown()

    def _may_hold(self) -> bool:
        """Is this request one to hold and answer here once its body is in? Only a plain one:
        a path held, POST, HTTP/1.1 kept alive, no 100-continue, no request before it still in
        progress (pipelined requests are answered in order by uvicorn)."""
        parser = self.parser
        return (
            self.url in self.held_paths
            and not self.root_path  # the paths answered here are the paths as sent
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

    def _answer_held(self, body: bytes) -> None:
        """Answer the held request the full way in a task of ours, not uvicorn's: its scope
        is complete, its body in hand. Until the answer is out, ``Answering`` is the cycle."""
        answering = Answering()
        self.cycle = answering  # type: ignore[assignment]
        task = self.loop.create_task(self._held_answer(self._asgi_scope(), body, answering))
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)  # shutdown waits for it, as for uvicorn's own

    async def _held_answer(self, scope: Scope, body: bytes, answering: Answering) -> None:
        def write(answer: Answer, request_id: bytes) -> None:
            if not answering.response_started:
                self._write_answer(answer, request_id, answering)

        try:
            proxy = proxy_headers(self.config)
            if proxy is not None:  # the client's address, as uvicorn's app would see it
                await proxy(scope, nothing, nothing)  # type: ignore[arg-type]
            if self.now is not None:
                await self.now.answer_held(scope, body, write)
        except Exception:
            log.exception("answering a held request failed")
        finally:
            # As uvicorn's cycle does for an app that fails: 500 if nothing went out, and the
            # connection ends if an answer could not be finished.
            if not answering.response_started:
                answering.keep_alive = False
                self._write_answer(FAILED, None, answering)
            if not answering.response_complete:
                answering.response_complete = True
                self.transport.close()

    def _write_answer(
        self, answer: Answer, request_id: bytes | None, answering: Answering | None = None
    ) -> None:
        """The whole response in one write, as uvicorn would have sent it in two; then what
        uvicorn does after a response (keep-alive timer, next pipelined request)."""
        keep_alive = answering is None or answering.keep_alive
        parts = [self.starts(answer.status, self.server_state.default_headers)]
        for name, value in answer.headers:
            parts += (name, b": ", value, b"\r\n")
        if request_id is not None:
            parts += (b"x-request-id: ", request_id, b"\r\n")
        if not keep_alive:
            parts.append(b"connection: close\r\n")
        parts += (b"\r\n", answer.body)
        data = b"".join(parts)  # built before anything is marked: a bad answer writes nothing
        if answering is not None:
            answering.response_started = True
            if answering.disconnected or self.transport.is_closing():
                answering.response_complete = True
                return
        self.transport.write(data)
        self._written = True
        if answering is not None:
            answering.response_complete = True
        if not keep_alive:
            self.transport.close()
        self.on_response_complete()

    def _start_cycle(self) -> None:
        """uvicorn's cycle for the request whose head is in, writing through ``OneWrite``
        unless the client waits for ``100 Continue`` (that write may not wait) or asked for
        no body (HEAD: nothing would follow the head)."""
        super().on_headers_complete()
        cycle = self.cycle
        if (
            isinstance(cycle, RequestResponseCycle)  # none made for an upgrade
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

    def _time_next_head(self) -> None:
        """The first bytes of a next request on a kept-alive connection, with nothing timed
        and no answer in progress: its head must follow within the limit too."""
        if not self._timeout.armed and (self.cycle is None or self.cycle.response_complete):
            self._timeout.arm(self.limits.header_timeout)

    def _timed_out(self) -> None:
        self._refuse(_TIMEOUT)

    def _refuse(self, answer: bytes) -> None:
        self._timeout.disarm()
        if self._refused or self.transport is None or self.transport.is_closing():
            return
        self._refused = True
        if self.cycle is None or self.cycle.response_complete or not self.cycle.response_started:
            self.transport.write(answer)
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # the app, if it started, is told the client is gone
        self.transport.close()


def guarded(limits: ConnectionLimits, now: HeldAnswers | None = None) -> type[GuardedProtocol]:
    """The protocol class one listener runs, with its limits and what answers from memory."""
    answering: dict[str, Any] = {}
    if now is not None:
        answering = {
            "now": now,
            "held_paths": now.held_paths,
            "held_body": now.max_body,
            "starts": AnswerStarts(),
        }
    return type("GuardedProtocol", (GuardedProtocol,), {"limits": limits, **answering})
