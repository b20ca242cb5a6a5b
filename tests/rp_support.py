"""A third-party relying party (npm ``openid-client``, run by Node) that a test drives step by
step; the loopback listener that is its redirect and post-logout URI; the server it signs in
with (an http issuer on loopback) and the headless Chromium that carries the user.

The Node side is tests/rp/rp.mjs; its packages are installed from tests/rp/package-lock.json by
``npm ci --prefix tests/rp``: by ``.ci/run``, or by the first test that needs them, so the
README's one test command is enough on a fresh machine. Without Node.js the tests fail, and say
so.
"""

from __future__ import annotations

import fcntl
import json
import queue
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

from tests.test_browser import CHROMEDRIVER, CHROMIUM, CHROMIUM_FLAGS, Live
from tests.test_browser import serving as browser_serving

RP_DIR = Path(__file__).resolve().parent / "rp"
STEP_TIMEOUT = 30.0  # seconds one step of the RP may take (discovery, a token request...)
STOP_TIMEOUT = 10.0
PAGE_TIMEOUT = 15.0  # seconds a page may take to load
MIN_NODE = 20  # openid-client 6 relies on the WebCrypto global Node.js 20 has


class RelyingPartyError(AssertionError):
    """openid-client refused something (``error``: what it raised), or the driver failed."""

    def __init__(self, message: str, error: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.error = error


def node() -> str:
    """Node's path, once checked that openid-client is installed beside the driver."""
    found = shutil.which("node")
    if found is None:
        raise RelyingPartyError(f"the relying-party tests need Node.js {MIN_NODE}+ on PATH")
    version = subprocess.run(
        [found, "--version"], capture_output=True, text=True, timeout=STEP_TIMEOUT, check=True
    ).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < MIN_NODE:
        raise RelyingPartyError(f"openid-client 6 needs Node.js {MIN_NODE} or newer, not {version}")
    install_packages()
    return found


def install_packages() -> None:
    """``npm ci`` from the lock file, once: xdist workers take turns under a file lock."""
    installed = RP_DIR / "node_modules" / "openid-client" / "package.json"
    npm = shutil.which("npm")
    with (RP_DIR / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if installed.is_file():
            return
        if npm is None:
            raise RelyingPartyError("openid-client is not installed and npm is not on PATH")
        done = subprocess.run(
            [npm, "ci", "--prefix", str(RP_DIR), "--no-audit", "--no-fund"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0 or not installed.is_file():
            raise RelyingPartyError(f"`npm ci --prefix {RP_DIR}` failed:\n{done.stderr[-2000:]}")


class RelyingParty:
    """One openid-client RP in its own Node process: one JSON command per line in, one JSON
    answer per line out. A refused step raises ``RelyingPartyError`` with openid-client's
    message; the process's stderr goes to ``log``."""

    def __init__(self, log: BinaryIO) -> None:
        self._process = subprocess.Popen(
            [node(), str(RP_DIR / "rp.mjs")],
            cwd=RP_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
        )
        self._answers: queue.Queue[bytes] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self._answers.put(line)
        self._answers.put(b"")  # the process closed its output

    def step(self, name: str, **args: Any) -> dict[str, Any]:
        """Run one step of the RP; its answer, without the ``ok`` flag."""
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps({"step": name, **args}).encode() + b"\n")
        self._process.stdin.flush()
        try:
            line = self._answers.get(timeout=STEP_TIMEOUT)
        except queue.Empty:
            raise RelyingPartyError(f"the RP did not answer {name} in {STEP_TIMEOUT} s") from None
        if not line:
            raise RelyingPartyError(f"the RP exited during {name}: {self._process.poll()}")
        answer: dict[str, Any] = json.loads(line)
        if not answer.pop("ok"):
            raise RelyingPartyError(
                f"openid-client refused {name}: {answer['error']}", answer["error"]
            )
        return answer

    def refusal(self, name: str, **args: Any) -> dict[str, Any]:
        """Run a step that openid-client must refuse; its error."""
        try:
            answer = self.step(name, **args)
        except RelyingPartyError as refused:
            if refused.error is None:
                raise
            return refused.error
        raise AssertionError(f"openid-client accepted {name}: {answer}")

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()  # the driver's loop ends with its input
        try:
            self._process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(STOP_TIMEOUT)
        self._reader.join(STOP_TIMEOUT)
        if self._process.stdout is not None:
            self._process.stdout.close()

    def __enter__(self) -> RelyingParty:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


# The RP's web side: where the browser lands after signing in and after signing out.


class _Handler(BaseHTTPRequestHandler):
    server: _LandingServer

    def do_GET(self) -> None:
        if self.path == "/favicon.ico":  # the browser's own request, not the flow's
            self.send_error(404)
            return
        self.server.visits.put(self.path)
        body = b"<!doctype html><title>Relying party</title><p>Back at the application.</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep the test output quiet


class _LandingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.visits: queue.Queue[str] = queue.Queue()


class Landing:
    """A loopback HTTP listener that records every path the browser visits on it."""

    def __init__(self) -> None:
        self._server = _LandingServer()
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}
        )
        self._thread.start()
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}"

    def visit(self, timeout: float) -> str:
        """The full URL of the next request the browser made here."""
        return self.url + self._server.visits.get(timeout=timeout)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(STOP_TIMEOUT)


# The authorization server, as a real process with an http issuer on loopback.


@contextmanager
def serving(database_url: str, log_path: Path, *, propagation: int) -> Iterator[Live]:
    """``authserver serve`` whose issuer is its own loopback URL; a new signing key waits
    ``propagation`` seconds before it signs."""
    with browser_serving(
        database_url,
        log_path,
        allow_http_redirects="true",
        key_propagation=str(propagation),
    ) as live:
        yield live


@contextmanager
def chromium() -> Iterator[WebDriver]:
    """A fresh headless Chromium with its own profile (tests.test_browser's flags)."""
    profile = tempfile.mkdtemp(prefix="authserver-rp-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver: WebDriver | None = None
    try:
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        driver.set_page_load_timeout(PAGE_TIMEOUT)
        yield driver
    finally:
        if driver is not None:
            driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
