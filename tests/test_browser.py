"""The whole browser flow in a real headless Chromium against a live ``authserver serve``.

A web app is provisioned through the admin API over HTTP; its redirect URI is a tiny HTTP
"client" run by the test. Screenshots of the login and consent pages, on a phone-sized and a
desktop-sized viewport, are saved under ``test-artifacts/`` (or ``$AUTHSERVER_TEST_ARTIFACTS``).

Chromium is installed by ``.ci/run`` when missing; outside CI (``CI`` unset) these tests skip
without it, under CI a missing browser fails.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from tests.conftest import ADMIN_TOKEN, ALICE_PASSWORD
from tests.conftest import server_environ as environ_for
from tests.oauth_support import pkce_pair

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,900",
)
START_TIMEOUT = 30.0  # seconds for /readyz to answer on both listeners
STOP_TIMEOUT = 15.0
WAIT = 15.0  # seconds any one browser wait may take
HTTP_TIMEOUT = 10.0

APP_NAME = "Zephyr Darkroom Exporter"
APP_DESCRIPTION = "Exports your retouched negatives to the Zephyr print lab every night."
APP_WEBSITE = "https://zephyr-darkroom.example/about"
STATE = "browser-state-7f3a9c"

PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}
DESKTOP = {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}

REPO_ROOT = Path(__file__).resolve().parents[1]


def artifacts_dir() -> Path:
    """Where screenshots go: $AUTHSERVER_TEST_ARTIFACTS, else test-artifacts/ at the repo root."""
    given = os.environ.get("AUTHSERVER_TEST_ARTIFACTS", "").strip()
    path = Path(given) if given else REPO_ROOT / "test-artifacts"
    path.mkdir(parents=True, exist_ok=True)
    return path


def require_chromium() -> None:
    """Skip without a browser on a developer machine; fail under CI, which installs it."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if shutil.which(path) is None]
    if not missing:
        return
    message = f"headless browser tests need {' and '.join(missing)} (Debian: chromium-driver)"
    if os.environ.get("CI"):
        pytest.fail(message + "; .ci/run installs them")
    pytest.skip(message)


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# the app's side: a tiny HTTP server that is the redirect URI


class _ClientHandler(BaseHTTPRequestHandler):
    server: _ClientServer

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/cb":
            self.server.callbacks.put(urlsplit(self.path).query)
            self._answer("<!doctype html><title>Callback</title><p>Callback received.</p>")
        elif path in self.server.pages:
            self._answer(self.server.pages[path])
        else:
            self.send_error(404)

    def _answer(self, body: str) -> None:
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep the test output quiet


class _ClientServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ClientHandler)
        self.callbacks: queue.Queue[str] = queue.Queue()
        self.pages: dict[str, str] = {}


@dataclass(frozen=True)
class AppClient:
    """The test's stand-in for the third-party app."""

    server: _ClientServer

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def redirect_uri(self) -> str:
        return self.url + "/cb"

    def callback(self) -> dict[str, list[str]]:
        """The query of the one request the browser made to the redirect URI."""
        return parse_qs(self.server.callbacks.get(timeout=WAIT), strict_parsing=True)


@pytest.fixture
def app_client() -> Iterator[AppClient]:
    """The app's redirect URI, served from a thread until the test ends."""
    server = _ClientServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield AppClient(server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=STOP_TIMEOUT)


# the authorization server, as a real process


@dataclass(frozen=True)
class Live:
    public_url: str
    admin_url: str
    log_path: Path

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def _wait_ready(process: subprocess.Popen[bytes], live: Live) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    with httpx.Client(timeout=2.0) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited early:\n{live.output()}")
            with suppress(httpx.HTTPError):
                public = http.get(live.public_url + "/readyz")
                admin = http.get(live.admin_url + "/readyz")
                if public.status_code == admin.status_code == 200:
                    return
            time.sleep(0.1)
    raise TimeoutError(f"the server was not ready within {START_TIMEOUT} s:\n{live.output()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)


@contextmanager
def serving(database_url: str, log_path: Path, **overrides: str) -> Iterator[Live]:
    """``python -m authserver serve`` on free loopback ports, its issuer its own http URL,
    with settings ``overrides``; stopped (SIGINT) at the end."""
    public, admin = free_port(), free_port()
    public_url = f"http://127.0.0.1:{public}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("AUTHSERVER_")}
    env.update(
        environ_for(
            database_url,
            issuer=public_url,
            public_addr=f"127.0.0.1:{public}",
            admin_addr=f"127.0.0.1:{admin}",
            **overrides,
        )
    )
    env["PYTHONUNBUFFERED"] = "1"
    server = Live(public_url, f"http://127.0.0.1:{admin}", log_path)
    with server.log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "authserver", "serve"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_ready(process, server)
            yield server
        finally:
            _stop(process)


@pytest.fixture
def live(database_url: str, tmp_path: Path) -> Iterator[Live]:
    """``python -m authserver serve`` on free loopback ports, with an http issuer."""
    with serving(database_url, tmp_path / "server.log", allow_http_redirects="true") as server:
        yield server


@pytest.fixture
def registered(live: Live, app_client: AppClient) -> dict[str, Any]:
    """Alice with a password, and the web app, provisioned through the admin API over HTTP."""
    with httpx.Client(
        base_url=live.admin_url,
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=HTTP_TIMEOUT,
    ) as admin:
        owner = admin.put(
            "/users/owner-1",
            json={"login": "olivia", "email": "olivia@example.com", "display_name": "Olivia"},
        )
        assert owner.status_code == 201, owner.text
        alice = admin.put(
            "/users/alice-1",
            json={"login": "alice", "email": "alice@example.com", "password": ALICE_PASSWORD},
        )
        assert alice.status_code == 201, alice.text
        client = admin.post(
            "/clients",
            json={
                "name": APP_NAME,
                "description": APP_DESCRIPTION,
                "website": APP_WEBSITE,
                "type": "web",
                "redirect_uris": [app_client.redirect_uri],
                "owner_id": owner.json()["user_id"],
            },
        )
        assert client.status_code == 201, client.text
        body: dict[str, Any] = client.json()
        return body


# the browser


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    """A fresh headless Chromium with its own profile, closed when the test ends."""
    require_chromium()
    profile = tempfile.mkdtemp(prefix="authserver-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver: WebDriver | None = None
    try:
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        driver.set_page_load_timeout(WAIT)
        driver.set_script_timeout(WAIT)
        yield driver
    finally:
        if driver is not None:
            driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _wait(driver: WebDriver) -> WebDriverWait[WebDriver]:
    return WebDriverWait(driver, WAIT)


def _screenshots(driver: WebDriver, name: str) -> None:
    """Save the current page as seen on a phone and on a desktop."""
    folder = artifacts_dir()
    for size, metrics in (("phone", PHONE), ("desktop", DESKTOP)):
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
        driver.execute_script("return document.body.offsetHeight")  # a layout at the new size
        assert driver.save_screenshot(str(folder / f"{name}-{size}.png"))
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def _authorize_url(live: Live, client: dict[str, Any], redirect_uri: str, challenge: str) -> str:
    params = {
        "response_type": "code",
        "client_id": client["client_id"],
        "redirect_uri": redirect_uri,
        "scope": "read write",
        "state": STATE,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    return f"{live.public_url}/oauth2/authorize?{urlencode(params)}"


def _sign_in(driver: WebDriver, url: str, screenshot: str | None = None) -> None:
    """Open the authorize URL, check the login page names the app, and sign in as Alice."""
    driver.get(url)
    username = _wait(driver).until(expected_conditions.element_to_be_clickable((By.ID, "username")))
    assert APP_NAME in driver.find_element(By.TAG_NAME, "main").text
    if screenshot is not None:
        _screenshots(driver, screenshot)
    username.send_keys("alice")
    driver.find_element(By.ID, "password").send_keys(ALICE_PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    _wait(driver).until(
        expected_conditions.presence_of_element_located(
            (By.CSS_SELECTOR, "button[name=decision][value=allow]")
        ),
        f"no consent page after signing in:\n{driver.page_source}",
    )


def _decide(driver: WebDriver, decision: str) -> None:
    driver.find_element(By.CSS_SELECTOR, f"button[name=decision][value={decision}]").click()


def test_allow_lands_on_redirect_uri_with_a_code_that_redeems_for_tokens(
    live: Live, registered: dict[str, Any], app_client: AppClient, browser: WebDriver
) -> None:
    """Sign in, see the app on the consent page, Allow: the code redeems for tokens."""
    verifier, challenge = pkce_pair()
    redirect_uri = app_client.redirect_uri
    _sign_in(browser, _authorize_url(live, registered, redirect_uri, challenge), "login")

    app = browser.find_element(By.CSS_SELECTOR, "main .app")
    assert app.find_element(By.TAG_NAME, "h2").text == APP_NAME
    assert APP_DESCRIPTION in app.text
    link = app.find_element(By.CSS_SELECTOR, f'a[href="{APP_WEBSITE}"]')
    assert link.text == APP_WEBSITE
    _screenshots(browser, "consent")

    _decide(browser, "allow")
    params = app_client.callback()
    _wait(browser).until(expected_conditions.url_contains(redirect_uri))
    assert params["state"] == [STATE]
    assert params["iss"] == [live.public_url]
    [code] = params["code"]
    tokens = httpx.post(
        live.public_url + "/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
        auth=(registered["client_id"], registered["client_secret"]),
        timeout=HTTP_TIMEOUT,
    )
    assert tokens.status_code == 200, tokens.text
    assert tokens.json()["access_token"]


def test_deny_lands_on_redirect_uri_with_access_denied(
    live: Live, registered: dict[str, Any], app_client: AppClient, browser: WebDriver
) -> None:
    """Deny on the consent page lands on the redirect URI with access_denied, state and iss."""
    _, challenge = pkce_pair()
    _sign_in(browser, _authorize_url(live, registered, app_client.redirect_uri, challenge))

    _decide(browser, "deny")
    params = app_client.callback()
    _wait(browser).until(expected_conditions.url_contains(app_client.redirect_uri))
    assert params["error"] == ["access_denied"]
    assert params["state"] == [STATE]
    assert params["iss"] == [live.public_url]
    assert "code" not in params


FRAMING_PAGE = """<!doctype html>
<title>Framing</title>
<script>window.framesLoaded = [];</script>
<iframe id="control" src="/control" onload="framesLoaded.push(this.id)"></iframe>
<iframe id="consent" src="{url}" onload="framesLoaded.push(this.id)"></iframe>
"""


def test_consent_page_does_not_render_in_a_frame(
    live: Live, registered: dict[str, Any], app_client: AppClient, browser: WebDriver
) -> None:
    """Another site framing the consent page gets an empty frame, not the Allow button."""
    _, challenge = pkce_pair()
    url = _authorize_url(live, registered, app_client.redirect_uri, challenge)
    _sign_in(browser, url)  # so the framed URL would show the consent page
    app_client.server.pages["/control"] = "<!doctype html><p id=control>Control frame</p>"
    app_client.server.pages["/framing"] = FRAMING_PAGE.format(url=url.replace("&", "&amp;"))

    browser.get(app_client.url + "/framing")
    _wait(browser).until(
        lambda driver: len(driver.execute_script("return window.framesLoaded")) == 2,
        "the frames never finished loading",
    )
    assert browser.save_screenshot(str(artifacts_dir() / "consent-framed.png"))
    # The control frame shows that a frame's content is readable when it renders at all.
    browser.switch_to.frame("control")
    assert browser.find_element(By.ID, "control").text == "Control frame"
    browser.switch_to.default_content()
    browser.switch_to.frame("consent")
    assert browser.find_elements(By.CSS_SELECTOR, "button[name=decision]") == []
    assert APP_NAME not in browser.find_element(By.TAG_NAME, "html").text
