"""Nothing a caller wrote comes back in an error (checklist S-07), and a request authenticates
its client one way only (S-26)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from authserver.errors import InvalidRequest
from authserver.oauth.params import KNOWN_NAMES, parse_form
from tests.authorize_support import location_params, query, url
from tests.token_support import basic, post_token, web_auth

Client = dict[str, Any]

HOSTILE = 'Call "+1-555"<b>é\\'
# RFC 6749 §5.2: error_description is %x20-21 / %x23-5B / %x5D-7E.
RFC_6749_TEXT = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")


async def test_repeated_unknown_parameter_is_not_named_in_the_redirect(
    public: httpx.AsyncClient, web_client: Client
) -> None:
    """An error redirect does not repeat a parameter name the caller chose."""
    extra = urlencode([(HOSTILE, "1"), (HOSTILE, "2")])
    response = await public.get(url(query(web_client) + "&" + extra))
    assert response.status_code in (302, 303)
    described = location_params(response)["error_description"]
    assert "Call" not in described
    assert "555" not in described
    assert RFC_6749_TEXT.fullmatch(described)


async def test_repeated_known_parameter_is_named(
    public: httpx.AsyncClient, web_client: Client
) -> None:
    """A parameter of the protocol may be named: it is the server's word, not the caller's."""
    response = await public.get(url(query(web_client) + "&scope=write"))
    assert "scope" in location_params(response)["error_description"]


async def test_token_endpoint_error_does_not_repeat_a_made_up_name(
    public: httpx.AsyncClient, web_client: Client
) -> None:
    """A JSON error about an undecodable parameter does not quote its name."""
    body = urlencode({"grant_type": "client_credentials"}) + "&" + "%3Cb%3Eevil%3C%2Fb%3E=%FF"
    response = await post_token(public, body, headers=web_auth(web_client))
    assert response.status_code == 400
    described = response.json()["error_description"]
    assert "evil" not in described
    assert RFC_6749_TEXT.fullmatch(described)


@given(st.text(max_size=30).map(lambda text: "Zq" + text))
def test_no_parse_error_names_a_made_up_parameter(name: str) -> None:
    """Whatever name a caller makes up, the errors about it never contain it (the marker
    prefix keeps the name from matching words of the message itself)."""
    assert name not in KNOWN_NAMES
    for body in (urlencode([(name, "1"), (name, "2")]), urlencode({name: "x"}) + "%FF"):
        with pytest.raises(InvalidRequest) as caught:
            parse_form(body)
        assert name not in caught.value.description


# S-26: one client authentication method per request


@pytest.mark.parametrize(
    "extra",
    [
        {"client_assertion": "eyJ.x.y"},
        {"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
    ],
    ids=["assertion", "assertion type"],
)
async def test_assertion_beside_basic_is_invalid_request(
    public: httpx.AsyncClient, web_client: Client, extra: dict[str, str]
) -> None:
    """A client assertion next to HTTP Basic is two methods at once: refused, not ignored."""
    params = {"grant_type": "client_credentials", **extra}
    response = await post_token(public, params, headers=web_auth(web_client))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_assertion_beside_a_body_secret_is_invalid_request(
    public: httpx.AsyncClient, web_client: Client
) -> None:
    """A client assertion next to client_secret in the body is refused too."""
    params = {
        "grant_type": "client_credentials",
        "client_id": web_client["client_id"],
        "client_secret": web_client["client_secret"],
        "client_assertion": "eyJ.x.y",
    }
    response = await post_token(public, params)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_assertion_alone_is_invalid_client(
    public: httpx.AsyncClient, web_client: Client
) -> None:
    """An assertion is not a method this server offers: the client is not authenticated."""
    params = {
        "grant_type": "client_credentials",
        "client_id": web_client["client_id"],
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": "eyJ.x.y",
    }
    response = await post_token(public, params)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_basic_alone_still_works(public: httpx.AsyncClient, web_client: Client) -> None:
    """The refusals above are about mixing: Basic on its own authenticates as before."""
    headers = basic(web_client["client_id"], web_client["client_secret"])
    response = await post_token(public, {"grant_type": "client_credentials"}, headers=headers)
    assert response.status_code == 200
