"""An imported appbox through a running server: the secrets its developers hold and the tokens
its integrations hold keep working, on both listeners (D9 to D12)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN
from tests.live_server import LiveServer, live_server
from tests.phraseanet_support import SITE_KEY, App, Appbox, alnum, run_import
from tests.token_support import FORM, basic

PASSWORD = "desk password"


@dataclass(frozen=True)
class Imported:
    server: LiveServer
    owner: str  # Phraseanet user id
    user: str
    web: App
    desktop: App
    flow_token: str  # a 4.x flow token (md5 hex) of the user for the web app
    developer_token: str  # the owner's developer token for the web app


@pytest.fixture
async def imported(appbox: Appbox, database_url: str, tmp_path: Path) -> AsyncIterator[Imported]:
    """An appbox with a web and a desktop app, a user's token and a developer token, imported,
    then served by ``authserver serve``."""
    owner = appbox.user("owner")
    user = appbox.user_with_password("tom", PASSWORD, salt="abcdefgh")
    web = appbox.app(owner)
    desktop = appbox.app(
        owner, type="desktop", grant_password=1, redirect_uri="urn:ietf:wg:oauth:2.0:oob"
    )
    flow_token = appbox.token(appbox.account(user, web), expires=1_700_000_000)
    developer_token = appbox.token(appbox.account(owner, web), value=alnum())
    await run_import(database_url, appbox)
    async with live_server(
        database_url, tmp_path / "server.log", phraseanet_site_key=SITE_KEY
    ) as server:
        yield Imported(server, str(owner), str(user), web, desktop, flow_token, developer_token)


async def token_request(
    server: LiveServer, params: dict[str, str], headers: dict[str, str] | None = None
) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10.0) as http:
        return await http.post(
            server.public_url + "/oauth2/token",
            data=params,
            headers={"Content-Type": FORM, **(headers or {})},
        )


async def admin_introspect(server: LiveServer, **body: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10.0) as http:
        response = await http.post(
            server.admin_url + "/introspect",
            json=body,
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def test_web_app_secret_still_authenticates(imported: Imported) -> None:
    """D11: the plaintext secret the developers hold authenticates the web app."""
    web = imported.web
    response = await token_request(
        imported.server,
        {"grant_type": "client_credentials"},
        basic(web.client_id, web.client_secret),
    )
    assert response.status_code == 200, response.text


async def test_web_app_must_send_its_secret(imported: Imported) -> None:
    """D11: Phraseanet's optional secret is gone: a web app naming itself only is refused."""
    response = await token_request(
        imported.server, {"grant_type": "client_credentials", "client_id": imported.web.client_id}
    )
    assert response.status_code == 401


async def test_desktop_app_sending_its_secret_is_accepted(imported: Imported) -> None:
    """D10: a desktop app that still sends the secret it was shown gets its token."""
    desktop = imported.desktop
    params = {"grant_type": "password", "username": "tom", "password": PASSWORD}
    response = await token_request(
        imported.server, params, basic(desktop.client_id, desktop.client_secret)
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("which", ["flow", "developer"])
async def test_imported_tokens_introspect_with_oauth_header(imported: Imported, which: str) -> None:
    """D9: a resource server forwarding Phraseanet's ``OAuth <token>`` header gets the
    Phraseanet user id as sub."""
    token = imported.flow_token if which == "flow" else imported.developer_token
    answer = await admin_introspect(imported.server, authorization=f"OAuth {token}")
    assert answer["active"] is True
    assert answer["sub"] == (imported.user if which == "flow" else imported.owner)
    assert answer["client_id"] == imported.web.client_id


async def test_imported_token_introspects_as_oauth_token(imported: Imported) -> None:
    """The SDK's ``oauth_token`` parameter, forwarded, introspects the same."""
    answer = await admin_introspect(imported.server, oauth_token=imported.flow_token)
    assert (answer["active"], answer["sub"]) == (True, imported.user)


async def test_imported_token_introspects_at_the_public_endpoint(imported: Imported) -> None:
    """RFC 7662 at the public listener, for a resource server registered after the import."""
    async with httpx.AsyncClient(timeout=10.0) as http:
        created = await http.post(
            imported.server.admin_url + "/clients",
            json={
                "name": "Phraseanet API",
                "website": "https://phraseanet.example",
                "type": "web",
                "redirect_uris": ["https://phraseanet.example/cb"],
                "owner_id": imported.owner,
                "introspection": True,
            },
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        assert created.status_code == 201, created.text
        rs = created.json()
        response = await http.post(
            imported.server.public_url + "/oauth2/introspect",
            data={"token": imported.flow_token},
            headers={"Content-Type": FORM, **basic(rs["client_id"], rs["client_secret"])},
        )
    assert response.status_code == 200, response.text
    assert (response.json()["active"], response.json()["sub"]) == (True, imported.user)


async def test_token_in_another_case_is_inactive(imported: Imported) -> None:
    """D12: MySQL matched tokens in any case; authserver matches the exact value."""
    answer = await admin_introspect(imported.server, token=imported.developer_token.swapcase())
    assert answer == {"active": False}
