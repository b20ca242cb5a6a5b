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
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


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
    limits: ConnectionLimits  # set on the subclass each listener gets (``guarded``)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._head_count = 0
        self._refused = False

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
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        self._disarm()  # the request is in: what the app takes is not the client's doing
        super().on_message_complete()

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


def guarded(limits: ConnectionLimits) -> type[GuardedProtocol]:
    """The protocol class one listener runs, with its limits."""
    return type("GuardedProtocol", (GuardedProtocol,), {"limits": limits})
