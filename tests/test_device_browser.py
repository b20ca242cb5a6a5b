"""The device flow end to end: a live ``authserver serve``, a device polling the token endpoint
from a thread, and a person on the verification page in a real headless Chromium.

Screenshots of the code, login and consent pages go where tests/test_browser.py puts its own.
Chromium is needed as there (skipped outside CI without it, a failure under CI).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from tests.conftest import ADMIN_TOKEN, ALICE_PASSWORD
from tests.device_support import DEVICE_GRANT
from tests.test_browser import (
    CHROMEDRIVER,
    CHROMIUM,
    CHROMIUM_FLAGS,
    HTTP_TIMEOUT,
    WAIT,
    Live,
    _screenshots,
    require_chromium,
    serving,
)

APP_NAME = "Aurora Frame"
APP_DESCRIPTION = "Shows the day's selection on the photo frame in your hall."
APP_WEBSITE = "https://aurora-frame.example/about"
POLL_DEADLINE = 60.0  # seconds the device keeps polling


@pytest.fixture
def live(database_url: str, tmp_path: Any) -> Iterator[Live]:
    """``python -m authserver serve`` with an http issuer and a one-second poll interval."""
    with serving(database_url, tmp_path / "server.log", device_poll_interval="1") as server:
        yield server


@pytest.fixture
def tv_app(live: Live) -> dict[str, Any]:
    """Olivia's device app (desktop, device grant on) and alice, provisioned over HTTP."""
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
                "type": "desktop",
                "owner_id": "owner-1",
                "device_grant": True,
            },
        )
        assert client.status_code == 201, client.text
        body: dict[str, Any] = client.json()
        return body


@pytest.fixture
def chromium() -> Iterator[WebDriver]:
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
        yield driver
    finally:
        if driver is not None:
            driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@dataclass
class Device:
    """The device: polls the token endpoint in a thread, as RFC 8628 §3.4 and §3.5 say."""

    token_url: str
    client_id: str
    device_code: str
    interval: float
    errors: list[str] = field(default_factory=list)
    answer: dict[str, Any] | None = None
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def wait(self) -> None:
        assert self._thread is not None
        self._thread.join(POLL_DEADLINE + 5)

    def _poll(self) -> None:
        deadline = time.monotonic() + POLL_DEADLINE
        interval = self.interval
        with httpx.Client(timeout=HTTP_TIMEOUT) as http:
            while time.monotonic() < deadline:
                response = http.post(
                    self.token_url,
                    data={
                        "grant_type": DEVICE_GRANT,
                        "device_code": self.device_code,
                        "client_id": self.client_id,
                    },
                )
                body = response.json()
                if response.status_code == 200:
                    self.answer = body
                    return
                self.errors.append(body["error"])
                if body["error"] == "slow_down":
                    interval += 5
                elif body["error"] != "authorization_pending":
                    return
                time.sleep(interval)


def _wait(driver: WebDriver) -> WebDriverWait[WebDriver]:
    return WebDriverWait(driver, WAIT)


def _start_device(live: Live, app: dict[str, Any]) -> tuple[dict[str, Any], Device]:
    response = httpx.post(
        live.public_url + "/oauth2/device_authorization",
        data={"client_id": app["client_id"], "scope": "read"},
        timeout=HTTP_TIMEOUT,
    )
    assert response.status_code == 200, response.text
    codes: dict[str, Any] = response.json()
    device = Device(
        live.public_url + "/oauth2/token", app["client_id"], codes["device_code"], codes["interval"]
    )
    device.start()
    return codes, device


def _sign_in(driver: WebDriver) -> None:
    username = _wait(driver).until(expected_conditions.element_to_be_clickable((By.ID, "username")))
    assert APP_NAME in driver.find_element(By.TAG_NAME, "main").text
    username.send_keys("alice")
    driver.find_element(By.ID, "password").send_keys(ALICE_PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    _wait(driver).until(
        expected_conditions.presence_of_element_located(
            (By.CSS_SELECTOR, "button[name=decision][value=allow]")
        ),
        f"no consent page after signing in:\n{driver.page_source}",
    )


def test_device_gets_tokens_once_the_person_allows_in_the_browser(
    live: Live, tv_app: dict[str, Any], chromium: WebDriver
) -> None:
    """verification_uri_complete, sign in, Allow: the polling device then gets tokens."""
    codes, device = _start_device(live, tv_app)
    chromium.get(codes["verification_uri_complete"])
    code_input = _wait(chromium).until(
        expected_conditions.element_to_be_clickable((By.ID, "user_code"))
    )
    assert code_input.get_attribute("value") == codes["user_code"]
    _screenshots(chromium, "device-code")
    chromium.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    _screenshots(chromium, "device-login")
    _sign_in(chromium)

    main = chromium.find_element(By.TAG_NAME, "main").text
    for shown in (APP_NAME, APP_DESCRIPTION, APP_WEBSITE, "Olivia", "A device is asking"):
        assert shown in main
    assert chromium.find_element(By.ID, "user_code").text == codes["user_code"]
    _screenshots(chromium, "device-consent")
    assert device.answer is None  # still waiting for the person
    chromium.find_element(By.CSS_SELECTOR, "button[name=decision][value=allow]").click()
    _wait(chromium).until(expected_conditions.title_contains("Device connected"))

    device.wait()
    assert device.answer is not None, device.errors
    assert device.answer["access_token"].startswith("phrat_")
    assert device.answer["scope"] == "read"
    assert "authorization_pending" in device.errors
    introspected = httpx.post(
        live.admin_url + "/introspect",
        data={"token": device.answer["access_token"]},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=HTTP_TIMEOUT,
    ).json()
    assert introspected["active"] is True
    assert introspected["username"] == "alice"


def test_typed_code_and_deny_tell_the_device_access_denied(
    live: Live, tv_app: dict[str, Any], chromium: WebDriver
) -> None:
    """The code typed by hand in lower case without its dash, then Deny: access_denied."""
    codes, device = _start_device(live, tv_app)
    chromium.get(codes["verification_uri"])
    code_input = _wait(chromium).until(
        expected_conditions.element_to_be_clickable((By.ID, "user_code"))
    )
    code_input.send_keys(codes["user_code"].replace("-", "").lower())
    chromium.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    _sign_in(chromium)
    chromium.find_element(By.CSS_SELECTOR, "button[name=decision][value=deny]").click()
    _wait(chromium).until(expected_conditions.title_contains("Access denied"))

    device.wait()
    assert device.answer is None
    assert device.errors[-1] == "access_denied"
