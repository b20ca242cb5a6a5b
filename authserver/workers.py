"""``authserver serve --workers N``: N processes serving the same two listeners.

One Python process runs one event loop on one CPU. The process that was started becomes a
supervisor: it does once what must happen once (the embedded database is started before it
runs, by the command; here the migrations and the first signing keys), binds both listening
sockets, then forks N workers that accept on them; the kernel hands each new connection to one
of them. It then only watches: a worker that dies is replaced (and its live gauges removed from
the metrics), SIGTERM or SIGINT is passed on to every worker, which drains as a single server
does, and the supervisor exits once they all have.

Workers run in a process group of their own, so a Ctrl-C in a terminal reaches them once,
through the supervisor, not twice. Each runs the background work of a server (janitor, client
cache notifications, legacy-token and signing-key reloads): reloads and notifications are per
process; janitor passes and key rotations take PostgreSQL locks, so running them in N
processes repeats harmless work, nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import FrameType

from prometheus_client.multiprocess import mark_process_dead

from authserver.config import Address, Settings
from authserver.errors import AuthServerError
from authserver.serve import FIRST_REQUEST_GRACE, WorkerRole, run_served, serve
from authserver.services import open_services

log = logging.getLogger("authserver")

BACKLOG = 2048  # uvicorn's own default, for the sockets it binds itself
STOP_SLACK = 5.0  # seconds past a worker's own drain bound before it is killed
QUICK_DEATH = 5.0  # seconds: a worker dying younger than this is restarted after a pause
MAX_PAUSE = 10.0
TICK = 0.1


def supervise(settings: Settings) -> int:
    """Run ``settings.workers`` workers until a signal; the exit status."""
    asyncio.run(_prepare(settings))
    try:
        sockets = (_listen(settings.public_addr), _listen(settings.admin_addr))
    except OSError as exc:
        log.error("cannot listen: %s", (exc.strerror or type(exc).__name__).lower())
        return 1
    metrics_dir = Path(tempfile.mkdtemp(prefix="authserver-metrics-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    try:
        worker_settings = replace(settings, migrate_on_start=False)
        return Supervisor(worker_settings, sockets, metrics_dir).run()
    finally:
        for sock in sockets:
            sock.close()
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        shutil.rmtree(metrics_dir, ignore_errors=True)


async def _prepare(settings: Settings) -> None:
    """Migrate (when configured) and make the first signing keys, once for all workers; a
    database that cannot be reached fails the start here, with one line."""
    async with open_services(settings) as services:
        await services.signing_keys.start(make=True)


def _listen(addr: Address) -> socket.socket:
    family, kind, proto, _, sockaddr = socket.getaddrinfo(
        addr.host, addr.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        sockets: tuple[socket.socket, socket.socket],
        metrics_dir: Path,
    ) -> None:
        self.settings = settings
        self.sockets = sockets
        self.metrics_dir = metrics_dir
        self.workers: dict[int, float] = {}  # pid → when it was started
        self.ready: set[int] = set()
        self.started = False  # every first worker reported ready
        self.failed = False
        self.killed = False
        self.signals: list[int] = []
        self.stopping: float | None = None
        self.quick_deaths = 0
        self.respawn_at: list[float] = []
        self._ready_read, self._ready_write = os.pipe()
        os.set_blocking(self._ready_read, False)
        self._buffer = b""

    def run(self) -> int:
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            log.info(
                "supervisor %d: %d workers on %s (public) and %s (admin)",
                os.getpid(),
                self.settings.workers,
                self.settings.public_addr,
                self.settings.admin_addr,
            )
            for _ in range(self.settings.workers):
                self._spawn()
            while self.workers or (self.stopping is None and self.respawn_at):
                self._tick()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            os.close(self._ready_read)
            os.close(self._ready_write)
        return 1 if self.failed or self.killed else 0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signals.append(signum)

    def _tick(self) -> None:
        select.select([self._ready_read], [], [], TICK)
        self._read_ready()
        self._reap()
        while self.signals:
            self._stop(self.signals.pop(0))
        now = time.monotonic()
        if self.stopping is None:
            due = [at for at in self.respawn_at if at <= now]
            self.respawn_at = [at for at in self.respawn_at if at > now]
            for _ in due:
                self._spawn()
        elif now > self.stopping + self._drain_bound() and not self.killed:
            log.error("workers still running after the shutdown grace: killing them")
            self.killed = True
            self._signal_all(signal.SIGKILL)

    def _drain_bound(self) -> float:
        s = self.settings
        return s.drain_delay + s.shutdown_grace + FIRST_REQUEST_GRACE + STOP_SLACK

    def _stop(self, signum: int) -> None:
        if self.stopping is None:
            self.stopping = time.monotonic()
            log.info("stopping %d workers", len(self.workers))
            for sock in self.sockets:  # the workers hold their own copies while they drain
                sock.close()
        self._signal_all(signum)  # a second signal means "now", to them as to a single server

    def _signal_all(self, signum: int) -> None:
        for pid in self.workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def _read_ready(self) -> None:
        try:
            self._buffer += os.read(self._ready_read, 4096)
        except BlockingIOError:
            return
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            self.ready.add(int(line))
            self.quick_deaths = 0
        if not self.started and self.ready >= set(self.workers) and self.workers:
            self.started = True
            log.info("%d workers ready: %s", len(self.workers), sorted(self.workers))

    def _reap(self) -> None:
        while self.workers:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            started = self.workers.pop(pid, None)
            if started is None:
                continue  # not a worker (nothing else is forked here, but be sure)
            mark_process_dead(pid, str(self.metrics_dir))  # type: ignore[no-untyped-call]
            self._buried(pid, status, started)

    def _buried(self, pid: int, status: int, started: float) -> None:
        was_ready = pid in self.ready
        self.ready.discard(pid)
        if self.stopping is not None:
            return
        how = _describe(status)
        if not self.started and not was_ready and os.WIFEXITED(status):
            # A first worker that gave up starting will not do better on a second try (one
            # killed from outside is replaced, as later on).
            log.error("worker %d %s before it was ready; stopping", pid, how)
            self.failed = True
            self._stop(signal.SIGTERM)
            return
        pause = 0.0
        if time.monotonic() - started < QUICK_DEATH:
            self.quick_deaths += 1
            pause = min(MAX_PAUSE, 0.5 * 2**self.quick_deaths)
        log.warning("worker %d %s; starting another in %.1f s", pid, how, pause)
        self.respawn_at.append(time.monotonic() + pause)

    def _spawn(self) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            os._exit(self._work())
        self.workers[pid] = time.monotonic()

    def _work(self) -> int:
        """The worker, in the forked child: serve, then exit without running anything the
        supervisor's own exit runs (the embedded database's shutdown among it)."""
        status = 1
        try:
            os.setpgid(0, 0)
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, signal.SIG_DFL)
            os.close(self._ready_read)
            role = WorkerRole(
                public=self.sockets[0],
                admin=self.sockets[1],
                metrics_dir=self.metrics_dir,
                parent=os.getppid(),
                ready=_reporter(self._ready_write),
            )
            status = 0 if run_served(serve(self.settings, role)) else 1
        except AuthServerError as exc:
            print(f"authserver: worker {os.getpid()}: {exc.description}", file=sys.stderr)
        except BaseException:
            log.exception("worker %d failed", os.getpid())
        finally:
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
        return status


def _reporter(fd: int) -> Callable[[], None]:
    def ready() -> None:
        os.write(fd, b"%d\n" % os.getpid())  # shorter than PIPE_BUF: one write, never torn

    return ready


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"
