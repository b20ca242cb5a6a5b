"""What the platform sets for OpenID Connect through the admin API: an application's ID token
algorithm and post-logout URIs, a user's email_verified."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import ALICE_PASSWORD

WEB = {
    "name": "Photo Sync",
    "website": "https://photosync.example",
    "type": "web",
    "redirect_uris": ["https://photosync.example/cb"],
}


async def create(admin: httpx.AsyncClient, owner: dict[str, Any], **fields: Any) -> httpx.Response:
    return await admin.post("/clients", json={**WEB, "owner_id": owner["user_id"], **fields})


async def test_id_token_alg_defaults_to_rs256(
    admin: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    """Core §15.1: RS256 unless the application asks otherwise."""
    body = (await create(admin, owner)).json()
    assert body["id_token_signed_response_alg"] == "RS256"


@pytest.mark.parametrize("alg", ["none", "HS256", "RS512", "rs256", ""])
async def test_id_token_alg_outside_the_supported_is_refused(
    admin: httpx.AsyncClient, owner: dict[str, Any], alg: str
) -> None:
    """Only RS256 and ES256 sign ID tokens: anything else is 400 and nothing is created."""
    response = await create(admin, owner, id_token_signed_response_alg=alg)
    assert response.status_code == 400
    assert "id_token_signed_response_alg" in response.json()["error_description"]
    assert (await admin.get(f"/clients?owner_id={owner['user_id']}")).json()["clients"] == []


@pytest.mark.parametrize(
    "uri",
    [
        "http://photosync.example/bye",  # not https
        "https://photosync.example/bye#top",  # fragment
        "urn:ietf:wg:oauth:2.0:oob",  # nowhere to send a browser
        "not a uri",
    ],
)
async def test_bad_post_logout_uri_is_refused(
    admin: httpx.AsyncClient, owner: dict[str, Any], uri: str
) -> None:
    """Post-logout URIs follow the redirect URI rules: a bad one is 400 naming the field."""
    response = await create(admin, owner, post_logout_redirect_uris=[uri])
    assert response.status_code == 400, response.text
    assert "post_logout_redirect_uris" in response.json()["error_description"]


async def test_repeated_post_logout_uri_is_refused(
    admin: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    """The same post-logout URI twice is 400."""
    uri = "https://photosync.example/bye"
    response = await create(admin, owner, post_logout_redirect_uris=[uri, uri])
    assert response.status_code == 400


async def test_patch_changes_the_openid_fields(
    admin: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    """PATCH sets the algorithm and the post-logout URIs, and GET shows them."""
    client_id = (await create(admin, owner)).json()["client_id"]
    patched = await admin.patch(
        f"/clients/{client_id}",
        json={
            "id_token_signed_response_alg": "ES256",
            "post_logout_redirect_uris": ["https://photosync.example/bye"],
        },
    )
    assert patched.status_code == 200, patched.text
    shown = (await admin.get(f"/clients/{client_id}")).json()
    assert shown["id_token_signed_response_alg"] == "ES256"
    assert shown["post_logout_redirect_uris"] == ["https://photosync.example/bye"]


async def test_patch_of_other_fields_keeps_the_openid_ones(
    admin: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    """A PATCH that leaves the OpenID fields out keeps their values."""
    created = await create(
        admin,
        owner,
        id_token_signed_response_alg="ES256",
        post_logout_redirect_uris=["https://photosync.example/bye"],
    )
    client_id = created.json()["client_id"]
    await admin.patch(f"/clients/{client_id}", json={"name": "Photo Sync 2"})
    shown = (await admin.get(f"/clients/{client_id}")).json()
    assert shown["id_token_signed_response_alg"] == "ES256"
    assert shown["post_logout_redirect_uris"] == ["https://photosync.example/bye"]


async def test_desktop_app_may_register_a_loopback_post_logout_uri(
    admin: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    """A desktop application signs out to a loopback URI, as it redirects to one."""
    response = await admin.post(
        "/clients",
        json={
            "name": "Desk",
            "website": "https://desk.example",
            "type": "desktop",
            "owner_id": owner["user_id"],
            "post_logout_redirect_uris": ["http://127.0.0.1:8400/bye"],
        },
    )
    assert response.status_code == 201, response.text
    assert response.json()["post_logout_redirect_uris"] == ["http://127.0.0.1:8400/bye"]


async def test_email_verified_defaults_to_false(admin: httpx.AsyncClient) -> None:
    """A user provisioned without the flag has email_verified false."""
    response = await admin.put("/users/u-1", json={"login": "alice", "email": "a@example.com"})
    assert response.json()["email_verified"] is False


async def test_email_verified_is_kept(admin: httpx.AsyncClient) -> None:
    """email_verified true is stored and shown."""
    await admin.put(
        "/users/u-1",
        json={"login": "alice", "email": "a@example.com", "email_verified": True},
    )
    assert (await admin.get("/users/u-1")).json()["email_verified"] is True


async def test_email_verified_without_email_is_refused(admin: httpx.AsyncClient) -> None:
    """A verified flag with no address to verify is 400."""
    response = await admin.put(
        "/users/u-1", json={"login": "alice", "email_verified": True, "password": ALICE_PASSWORD}
    )
    assert response.status_code == 400
    assert "email_verified" in response.json()["error_description"]


async def test_email_verified_must_be_a_boolean(admin: httpx.AsyncClient) -> None:
    """email_verified "yes" is 400, not true."""
    response = await admin.put(
        "/users/u-1", json={"login": "alice", "email": "a@example.com", "email_verified": "yes"}
    )
    assert response.status_code == 400
