"""The token endpoint: the authorization-code grant with PKCE, client authentication and
request hygiene (RFC 6749 §2.3, §3.2, §4.1.3, §5; RFC 7636; RFC 9700)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import httpx
import pytest

from authserver.security.client_secrets import SecretHasher
from authserver.security.keys import Keyring
from authserver.security.tokens import TokenKind, token_digest
from tests.conftest import SECRET_KEY
from tests.oauth_support import CODEC, issue_code, pkce_pair, s256
from tests.token_support import (
    ALIAS,
    DESKTOP_REDIRECT,
    FORM,
    TOKEN,
    WEB_REDIRECT,
    audit_kinds,
    basic,
    code_params,
    desktop_code,
    desktop_params,
    introspect,
    post_token,
    public_app,
    redeem,
    refresh,
    stored_token,
    web_auth,
    web_code,
    web_tokens,
)

Client = dict[str, Any]


@pytest.fixture
async def lax_client(admin: httpx.AsyncClient, web_client: Client) -> Client:
    """The web client, set to redeem codes without PKCE (D17: a legacy SDK)."""
    response = await admin.patch(
        f"/clients/{web_client['client_id']}", json={"require_pkce": False}
    )
    assert response.status_code == 200, response.text
    return web_client


@pytest.fixture
async def code_pair(db: asyncpg.Connection, web_client: Client, alice: Client) -> tuple[str, str]:
    """A fresh PKCE code the web client may redeem for alice; (code, verifier)."""
    return await web_code(db, web_client, alice)


# Authorization code grant: the happy paths


async def test_confidential_client_redeems_code(
    public: httpx.AsyncClient,
    web_client: Client,
    code_pair: tuple[str, str],
) -> None:
    """S-32: a confidential client with Basic auth and a PKCE verifier gets a bearer pair."""
    code, verifier = code_pair
    response = await redeem(public, web_client, code, verifier)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["access_token"].startswith("phrat_")
    assert body["refresh_token"].startswith("phrrt_")
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "read write"


async def test_public_client_redeems_code(
    public: httpx.AsyncClient, db: asyncpg.Connection, desktop_client: Client, alice: Client
) -> None:
    """S-31: a desktop client names itself in the body, sends no secret, and gets a pair."""
    code, verifier = await desktop_code(db, desktop_client, alice)
    response = await post_token(public, desktop_params(code, verifier, desktop_client))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["access_token"].startswith("phrat_")
    assert body["refresh_token"].startswith("phrrt_")
    assert body["token_type"] == "Bearer"


async def test_token_response_is_not_cacheable(
    public: httpx.AsyncClient,
    web_client: Client,
    code_pair: tuple[str, str],
) -> None:
    """S-32: a token response is JSON with Cache-Control: no-store and Pragma: no-cache."""
    code, verifier = code_pair
    response = await redeem(public, web_client, code, verifier)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    assert response.headers["content-type"].startswith("application/json")


async def test_error_response_is_not_cacheable(
    public: httpx.AsyncClient, web_client: Client
) -> None:
    """S-32: an error from the token endpoint carries no-store and no-cache too."""
    response = await post_token(
        public,
        {"grant_type": "authorization_code", "code": "nope", "code_verifier": "x" * 43},
        headers=web_auth(web_client),
    )
    assert response.status_code == 400
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"


async def test_phraseanet_alias_answers_like_canonical_route(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """The Phraseanet alias /api/oauthv2/token issues the same response shape as /oauth2/token."""
    shapes = []
    for path in (TOKEN, ALIAS):
        code, verifier = await web_code(db, web_client, alice)
        response = await post_token(
            public, code_params(code, verifier), headers=web_auth(web_client), path=path
        )
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        body = response.json()
        shapes.append({key: type(value) for key, value in body.items()})
    assert shapes[0] == shapes[1]
    assert set(shapes[0]) == {"access_token", "token_type", "expires_in", "scope", "refresh_token"}


async def test_tokens_are_stored_only_as_digests(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """S-41: the tokens table holds SHA-256 digests of the issued tokens, never the tokens."""
    body = await web_tokens(public, db, web_client, alice)
    for name in ("access_token", "refresh_token"):
        row = await stored_token(db, body[name])
        assert row is not None
        assert bytes(row["digest"]) == hashlib.sha256(body[name].encode()).digest()
    dump = "\n".join(await db.fetchval("SELECT array_agg(t::text) FROM tokens t"))
    for name in ("access_token", "refresh_token"):
        assert body[name] not in dump
        assert body[name].split("_", 1)[1][:20] not in dump


# PKCE (RFC 7636, RFC 9700 §2.1.1)


@pytest.mark.parametrize(
    ("send_verifier", "error"),
    [
        pytest.param(True, "invalid_grant", id="with-verifier"),
        pytest.param(False, "invalid_request", id="without-verifier"),
    ],
)
async def test_public_client_code_without_challenge_is_refused(
    public: httpx.AsyncClient,
    db: asyncpg.Connection,
    desktop_client: Client,
    alice: Client,
    send_verifier: bool,
    error: str,
) -> None:
    """S-10: a public client's code issued without a PKCE challenge never yields tokens."""
    code = await issue_code(
        db,
        desktop_client["client_id"],
        alice["user_id"],
        redirect_uri=DESKTOP_REDIRECT,
        challenge=None,
    )
    verifier = pkce_pair()[0] if send_verifier else None
    response = await post_token(public, desktop_params(code, verifier, desktop_client))
    assert response.status_code == 400
    assert response.json()["error"] == error


async def test_confidential_code_without_challenge_is_refused_by_default(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """S-10: PKCE is required of every client by default, confidential ones included."""
    code = await issue_code(
        db, web_client["client_id"], alice["user_id"], redirect_uri=WEB_REDIRECT, challenge=None
    )
    params = {"grant_type": "authorization_code", "code": code, "redirect_uri": WEB_REDIRECT}
    response = await post_token(public, params, headers=web_auth(web_client))
    assert response.status_code == 400
    assert "access_token" not in response.json()


async def test_missing_verifier_is_invalid_request(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """S-14: redeeming a code bound to a challenge without a verifier is invalid_request."""
    code, _ = await web_code(db, web_client, alice)
    params = {"grant_type": "authorization_code", "code": code, "redirect_uri": WEB_REDIRECT}
    response = await post_token(public, params, headers=web_auth(web_client))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_empty_verifier_is_treated_as_absent(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """S-11: an empty code_verifier= is answered exactly like a missing one."""
    code, _ = await web_code(db, web_client, alice)
    body = f"grant_type=authorization_code&code={code}&redirect_uri={WEB_REDIRECT}&code_verifier="
    empty = await post_token(public, body, headers=web_auth(web_client))
    params = {"grant_type": "authorization_code", "code": code, "redirect_uri": WEB_REDIRECT}
    missing = await post_token(public, params, headers=web_auth(web_client))
    assert empty.status_code == missing.status_code == 400
    assert empty.json() == missing.json()
    assert empty.json()["error"] == "invalid_request"


async def test_wrong_verifier_is_invalid_grant(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """S-14, S-16: a well-formed verifier of another challenge is invalid_grant."""
    code, _ = await web_code(db, web_client, alice)
    other_verifier, _ = pkce_pair()
    response = await redeem(public, web_client, code, other_verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_challenge_as_plain_verifier_is_invalid_grant(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """S-15: sending the S256 challenge itself as a plain verifier does not downgrade PKCE."""
    _, challenge = pkce_pair()
    code = await issue_code(
        db,
        web_client["client_id"],
        alice["user_id"],
        redirect_uri=WEB_REDIRECT,
        challenge=challenge,
    )
    response = await redeem(public, web_client, code, challenge, code_challenge_method="plain")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "verifier",
    [
        pytest.param("a" * 42, id="length-42"),
        pytest.param("b" * 129, id="length-129"),
        pytest.param("c" * 40 + "+/=", id="plus-slash-equals"),
        pytest.param("d" * 42 + " ", id="space"),
        pytest.param("e" * 42 + "é", id="non-ascii"),
    ],
)
async def test_malformed_verifier_is_refused_even_if_it_matches(
    public: httpx.AsyncClient,
    db: asyncpg.Connection,
    web_client: Client,
    alice: Client,
    verifier: str,
) -> None:
    """S-13: a verifier outside 43*128unreserved is refused although its S256 matches."""
    code = await issue_code(
        db,
        web_client["client_id"],
        alice["user_id"],
        redirect_uri=WEB_REDIRECT,
        challenge=s256(verifier),
    )
    response = await redeem(public, web_client, code, verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_boundary_verifier_lengths_are_accepted(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """S-13: verifiers of exactly 43 and 128 unreserved characters are accepted."""
    for verifier in ("A-._~" * 8 + "xyz", "Z" * 128):
        code = await issue_code(
            db,
            web_client["client_id"],
            alice["user_id"],
            redirect_uri=WEB_REDIRECT,
            challenge=s256(verifier),
        )
        response = await redeem(public, web_client, code, verifier)
        assert response.status_code == 200, (len(verifier), response.text)


async def test_verifier_for_code_without_challenge_is_downgrade(
    public: httpx.AsyncClient, db: asyncpg.Connection, lax_client: Client, alice: Client
) -> None:
    """S-15: a verifier sent for a code issued without a challenge is invalid_grant."""
    code = await issue_code(
        db, lax_client["client_id"], alice["user_id"], redirect_uri=WEB_REDIRECT, challenge=None
    )
    verifier, _ = pkce_pair()
    response = await redeem(public, lax_client, code, verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_code_without_challenge_is_redeemed_when_pkce_optional(
    public: httpx.AsyncClient, db: asyncpg.Connection, lax_client: Client, alice: Client
) -> None:
    """D17: for a web client without require_pkce, a code without a challenge needs none."""
    code = await issue_code(
        db, lax_client["client_id"], alice["user_id"], redirect_uri=WEB_REDIRECT, challenge=None
    )
    params = {"grant_type": "authorization_code", "code": code, "redirect_uri": WEB_REDIRECT}
    response = await post_token(public, params, headers=web_auth(lax_client))
    assert response.status_code == 200, response.text


# redirect_uri (RFC 6749 §4.1.3)


@pytest.mark.parametrize(
    "redirect_uri",
    [
        pytest.param(None, id="omitted"),
        pytest.param(WEB_REDIRECT + "/", id="trailing-slash"),
        pytest.param("https://photosync.example/other", id="other-path"),
        pytest.param("HTTPS://PHOTOSYNC.EXAMPLE/cb", id="case"),
        pytest.param(WEB_REDIRECT + "?x=1", id="query-added"),
    ],
)
async def test_redirect_uri_must_match_the_codes(
    public: httpx.AsyncClient,
    web_client: Client,
    code_pair: tuple[str, str],
    redirect_uri: str | None,
) -> None:
    """S-21: a code issued for a redirect URI needs exactly that URI again: invalid_grant."""
    code, verifier = code_pair
    params = code_params(code, verifier)
    if redirect_uri is None:
        del params["redirect_uri"]
    else:
        params["redirect_uri"] = redirect_uri
    response = await post_token(public, params, headers=web_auth(web_client))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_code_without_redirect_uri_needs_none(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """S-21: a code issued without a redirect URI is redeemed without one."""
    code, verifier = await web_code(db, web_client, alice, redirect_uri=None)
    params = code_params(code, verifier)
    del params["redirect_uri"]
    response = await post_token(public, params, headers=web_auth(web_client))
    assert response.status_code == 200, response.text


async def test_code_without_redirect_uri_refuses_one(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """S-21: a redirect URI sent for a code issued without one is invalid_grant."""
    code, verifier = await web_code(db, web_client, alice, redirect_uri=None)
    response = await redeem(public, web_client, code, verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


# The code itself: bound to its client, short-lived, unforgeable


async def test_another_clients_code_is_invalid_grant(
    public: httpx.AsyncClient,
    web_client: Client,
    code_pair: tuple[str, str],
    introspector: Client,
) -> None:
    """S-20: a client authenticated with its own secret cannot redeem another client's code."""
    code, verifier = code_pair
    response = await redeem(public, introspector, code, verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_code_survives_another_clients_attempt(
    public: httpx.AsyncClient,
    web_client: Client,
    code_pair: tuple[str, str],
    introspector: Client,
) -> None:
    """S-20: after another client's refused attempt, the rightful client still redeems the code."""
    code, verifier = code_pair
    await redeem(public, introspector, code, verifier)
    response = await redeem(public, web_client, code, verifier)
    assert response.status_code == 200, response.text


async def test_expired_code_is_invalid_grant(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """S-22: a code past its lifetime is invalid_grant."""
    code, verifier = await web_code(db, web_client, alice, ttl=-1)
    response = await redeem(public, web_client, code, verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def _tampered(code: str) -> str:
    last = "A" if code[-1] != "A" else "B"
    return code[:-1] + last


@pytest.mark.parametrize(
    "make_code",
    [
        pytest.param(lambda real: "garbage", id="garbage"),
        pytest.param(_tampered, id="bad-mac"),
        pytest.param(lambda real: CODEC.mint(TokenKind.CODE), id="never-issued"),
        pytest.param(lambda real: CODEC.mint(TokenKind.ACCESS), id="access-token"),
        pytest.param(lambda real: real[:-16], id="mac-stripped"),
    ],
)
async def test_forged_code_is_invalid_grant(
    public: httpx.AsyncClient,
    web_client: Client,
    code_pair: tuple[str, str],
    make_code: Callable[[str], str],
) -> None:
    """S-23: a forged, tampered or never-issued code is invalid_grant."""
    real, verifier = code_pair
    forged = make_code(real)
    response = await redeem(public, web_client, forged, verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_tampered_code_matching_a_stored_digest_is_refused(
    public: httpx.AsyncClient,
    db: asyncpg.Connection,
    web_client: Client,
    code_pair: tuple[str, str],
) -> None:
    """S-23: a code with a bad MAC is refused even when its digest is in the database."""
    real, verifier = code_pair
    forged = _tampered(real)
    await db.execute(
        "UPDATE authorization_codes SET digest = $1 WHERE digest = $2",
        token_digest(forged),
        token_digest(real),
    )
    response = await redeem(public, web_client, forged, verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


# Single use (RFC 6749 §4.1.2, §10.5)


async def test_second_redemption_is_invalid_grant(
    public: httpx.AsyncClient,
    web_client: Client,
    code_pair: tuple[str, str],
) -> None:
    """S-18: a code redeemed once is invalid_grant the second time."""
    code, verifier = code_pair
    first = await redeem(public, web_client, code, verifier)
    assert first.status_code == 200
    second = await redeem(public, web_client, code, verifier)
    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"


async def test_replayed_code_revokes_what_it_issued(
    public: httpx.AsyncClient,
    db: asyncpg.Connection,
    web_client: Client,
    code_pair: tuple[str, str],
    introspector: Client,
) -> None:
    """S-18: a replayed code revokes the access and refresh token of its first redemption."""
    code, verifier = code_pair
    first = await redeem(public, web_client, code, verifier)
    tokens = first.json()
    assert (await introspect(public, introspector, tokens["access_token"]))["active"] is True
    await redeem(public, web_client, code, verifier)
    assert (await introspect(public, introspector, tokens["access_token"]))["active"] is False
    refresh_row = await stored_token(db, tokens["refresh_token"])
    assert refresh_row is not None
    assert refresh_row["revoked_at"] is not None
    refreshed = await refresh(public, web_client, tokens["refresh_token"])
    assert refreshed.status_code == 400
    assert refreshed.json()["error"] == "invalid_grant"


async def test_replayed_code_is_audited(
    public: httpx.AsyncClient,
    db: asyncpg.Connection,
    web_client: Client,
    code_pair: tuple[str, str],
) -> None:
    """S-18: a code replay leaves a code.replay_detected audit event."""
    code, verifier = code_pair
    await redeem(public, web_client, code, verifier)
    assert "code.replay_detected" not in await audit_kinds(db)
    await redeem(public, web_client, code, verifier)
    assert "code.replay_detected" in await audit_kinds(db)


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param({"code_verifier": pkce_pair()[0]}, id="wrong-verifier"),
        pytest.param({"redirect_uri": "https://photosync.example/other"}, id="wrong-redirect"),
    ],
)
async def test_invalid_replay_does_not_revoke(
    public: httpx.AsyncClient,
    web_client: Client,
    code_pair: tuple[str, str],
    introspector: Client,
    spoil: dict[str, str],
) -> None:
    """S-19: replaying a used code with invalid parameters is refused without revoking."""
    code, verifier = code_pair
    first = await redeem(public, web_client, code, verifier)
    access = first.json()["access_token"]
    replay = await redeem(public, web_client, code, verifier, **spoil)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert (await introspect(public, introspector, access))["active"] is True


async def test_replay_by_another_client_does_not_revoke(
    public: httpx.AsyncClient,
    web_client: Client,
    code_pair: tuple[str, str],
    introspector: Client,
) -> None:
    """S-19: another client replaying a used code is refused and revokes nothing."""
    code, verifier = code_pair
    first = await redeem(public, web_client, code, verifier)
    access = first.json()["access_token"]
    replay = await redeem(public, introspector, code, verifier)
    assert replay.status_code == 400
    assert (await introspect(public, introspector, access))["active"] is True


# Client authentication (RFC 6749 §2.3.1, §5.2)


async def _add_secret(db: asyncpg.Connection, client_id: str, secret: str) -> None:
    """Store an extra secret for a client, hashed as the server hashes one (a legacy import)."""
    digest = SecretHasher(Keyring([SECRET_KEY])).digest(secret)
    await db.execute(
        "INSERT INTO client_secrets (client_id, key_id, digest) VALUES ($1, $2, $3)",
        client_id,
        digest.key_id,
        digest.digest,
    )


CLIENT_CREDENTIALS = {"grant_type": "client_credentials"}
AWKWARD_SECRET = "s3cr:et %+&=/?é€"


async def test_basic_credentials_are_form_urldecoded(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client
) -> None:
    """S-28: a secret with : % + & and non-ASCII works when form-urlencoded inside Basic."""
    await _add_secret(db, web_client["client_id"], AWKWARD_SECRET)
    response = await post_token(
        public, CLIENT_CREDENTIALS, headers=basic(web_client["client_id"], AWKWARD_SECRET)
    )
    assert response.status_code == 200, response.text


async def test_body_credentials_authenticate(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client
) -> None:
    """S-28: client_id and client_secret in the body authenticate the client."""
    await _add_secret(db, web_client["client_id"], AWKWARD_SECRET)
    params = {
        **CLIENT_CREDENTIALS,
        "client_id": web_client["client_id"],
        "client_secret": AWKWARD_SECRET,
    }
    response = await post_token(public, params)
    assert response.status_code == 200, response.text


async def test_basic_and_body_secret_is_invalid_request(
    public: httpx.AsyncClient, web_client: Client
) -> None:
    """S-26: Basic plus client_secret in the body is two methods at once: 400 invalid_request."""
    params = {
        **CLIENT_CREDENTIALS,
        "client_id": web_client["client_id"],
        "client_secret": web_client["client_secret"],
    }
    response = await post_token(public, params, headers=web_auth(web_client))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_basic_with_other_body_client_id_is_invalid_client(
    public: httpx.AsyncClient, web_client: Client, introspector: Client
) -> None:
    """S-26: Basic for client A with client_id=B in the body is 401 invalid_client."""
    params = {**CLIENT_CREDENTIALS, "client_id": introspector["client_id"]}
    response = await post_token(public, params, headers=web_auth(web_client))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_basic_with_same_body_client_id_is_accepted(
    public: httpx.AsyncClient, web_client: Client
) -> None:
    """RFC 6749 §4.4: Basic for client A with client_id=A repeated in the body is accepted."""
    params = {**CLIENT_CREDENTIALS, "client_id": web_client["client_id"]}
    response = await post_token(public, params, headers=web_auth(web_client))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "via", [pytest.param("basic", id="basic"), pytest.param("body", id="body")]
)
async def test_wrong_secret_is_invalid_client(
    public: httpx.AsyncClient, web_client: Client, via: str
) -> None:
    """S-27: a wrong secret is 401 invalid_client with a Basic challenge."""
    wrong = web_client["client_secret"][:-1] + (
        "A" if web_client["client_secret"][-1] != "A" else "B"
    )
    if via == "basic":
        response = await post_token(
            public, CLIENT_CREDENTIALS, headers=basic(web_client["client_id"], wrong)
        )
    else:
        params = {
            **CLIENT_CREDENTIALS,
            "client_id": web_client["client_id"],
            "client_secret": wrong,
        }
        response = await post_token(public, params)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")


async def test_unknown_client_looks_like_wrong_secret(
    public: httpx.AsyncClient, web_client: Client
) -> None:
    """S-27: an unknown client gets the same 401, body and challenge as a wrong secret."""
    unknown = await post_token(
        public, CLIENT_CREDENTIALS, headers=basic("no-such-client", web_client["client_secret"])
    )
    wrong = await post_token(
        public, CLIENT_CREDENTIALS, headers=basic(web_client["client_id"], "phrcs_wrong")
    )
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()
    assert unknown.headers["www-authenticate"] == wrong.headers["www-authenticate"]


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param("Basic !!!not-base64!!!", id="not-base64"),
        pytest.param("Basic " + base64.b64encode(b"no-colon-here").decode(), id="no-colon"),
        pytest.param("Basic " + base64.b64encode(b"\xff\xfe:\xfd").decode(), id="not-utf8"),
        pytest.param("Basic " + base64.b64encode(b":secret").decode(), id="empty-id"),
        pytest.param("Basic " + base64.b64encode(b"a%00b:secret").decode(), id="nul-in-id"),
        pytest.param("Basic " + "QUFB" * 3000, id="huge"),
    ],
)
async def test_malformed_basic_header_is_invalid_client(
    public: httpx.AsyncClient, authorization: str
) -> None:
    """S-28: a malformed Basic header is a clean 401 invalid_client, never a 5xx."""
    response = await post_token(
        public, CLIENT_CREDENTIALS, headers={"Authorization": authorization}
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")


async def test_deactivated_client_is_invalid_client(
    public: httpx.AsyncClient, admin: httpx.AsyncClient, web_client: Client
) -> None:
    """S-40: a client deactivated through the admin API can no longer authenticate."""
    assert (await post_token(public, CLIENT_CREDENTIALS, headers=web_auth(web_client))).is_success
    patched = await admin.patch(f"/clients/{web_client['client_id']}", json={"active": False})
    assert patched.status_code == 200
    response = await post_token(public, CLIENT_CREDENTIALS, headers=web_auth(web_client))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_rotated_out_secret_works_during_overlap(
    public: httpx.AsyncClient, admin: httpx.AsyncClient, web_client: Client
) -> None:
    """S-40: after a rotation both the previous and the new secret authenticate."""
    rotated = await admin.post(f"/clients/{web_client['client_id']}/secret")
    assert rotated.status_code == 201
    new_secret = rotated.json()["client_secret"]
    assert new_secret != web_client["client_secret"]
    for secret in (web_client["client_secret"], new_secret):
        response = await post_token(
            public, CLIENT_CREDENTIALS, headers=basic(web_client["client_id"], secret)
        )
        assert response.status_code == 200, response.text


async def test_secret_rotated_twice_stops_working(
    public: httpx.AsyncClient, admin: httpx.AsyncClient, web_client: Client
) -> None:
    """S-40: a secret two rotations old no longer authenticates."""
    for _ in range(2):
        assert (await admin.post(f"/clients/{web_client['client_id']}/secret")).status_code == 201
    response = await post_token(public, CLIENT_CREDENTIALS, headers=web_auth(web_client))
    assert response.status_code == 401


async def test_confidential_client_without_authentication_is_invalid_client(
    public: httpx.AsyncClient,
    web_client: Client,
    code_pair: tuple[str, str],
) -> None:
    """S-31: a confidential client that names itself without a secret is 401 invalid_client."""
    code, verifier = code_pair
    params = {**code_params(code, verifier), "client_id": web_client["client_id"]}
    response = await post_token(public, params)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_public_client_presenting_a_secret_is_invalid_client(
    public: httpx.AsyncClient, db: asyncpg.Connection, desktop_client: Client, alice: Client
) -> None:
    """S-27: a public client that presents a secret it was never issued is invalid_client."""
    code, verifier = await desktop_code(db, desktop_client, alice)
    params = {**desktop_params(code, verifier, desktop_client), "client_secret": "phrcs_guess"}
    response = await post_token(public, params)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_unauthenticated_request_names_no_client(public: httpx.AsyncClient) -> None:
    """S-27: a token request without any client identification is 401 invalid_client."""
    response = await post_token(public, CLIENT_CREDENTIALS)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


# Request hygiene (RFC 6749 §3.2, §5.2; checklist R-19)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, id=name)
        for name in (
            "grant_type",
            "code",
            "code_verifier",
            "redirect_uri",
            "refresh_token",
            "scope",
            "client_id",
            "client_secret",
            "username",
            "password",
        )
    ],
)
async def test_duplicate_parameter_is_invalid_request(
    public: httpx.AsyncClient,
    db: asyncpg.Connection,
    web_client: Client,
    code_pair: tuple[str, str],
    name: str,
) -> None:
    """S-25: any parameter sent twice is 400 invalid_request, and the code stays unused."""
    code, verifier = code_pair
    params = [*code_params(code, verifier).items(), (name, "x"), (name, "y")]
    response = await post_token(public, params, headers=web_auth(web_client))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    consumed = await db.fetchval(
        "SELECT count(*) FROM authorization_codes WHERE consumed_at IS NOT NULL"
    )
    assert consumed == 0


async def test_duplicate_with_equal_values_is_invalid_request(
    public: httpx.AsyncClient,
    web_client: Client,
    code_pair: tuple[str, str],
) -> None:
    """S-25: a parameter repeated with the same value is still refused."""
    code, verifier = code_pair
    params = [*code_params(code, verifier).items(), ("code", code)]
    response = await post_token(public, params, headers=web_auth(web_client))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_query_string_on_post_is_invalid_request(
    public: httpx.AsyncClient,
    web_client: Client,
    code_pair: tuple[str, str],
) -> None:
    """S-24: a POST carrying a URL query is 400 invalid_request, even with a valid body."""
    code, verifier = code_pair
    response = await post_token(
        public,
        code_params(code, verifier),
        headers=web_auth(web_client),
        path=TOKEN + "?client_secret=" + web_client["client_secret"],
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    "content_type",
    [
        pytest.param("application/json", id="json"),
        pytest.param("text/plain", id="text-plain"),
        pytest.param("multipart/form-data; boundary=x", id="multipart"),
        pytest.param(FORM + "; charset=ISO-8859-1", id="latin1"),
        pytest.param(FORM + "; charset=utf-16", id="utf16"),
        pytest.param(None, id="missing"),
    ],
)
async def test_wrong_content_type_is_invalid_request(
    public: httpx.AsyncClient, web_client: Client, content_type: str | None
) -> None:
    """S-24: anything but a UTF-8 form body is 400 invalid_request."""
    headers = dict(web_auth(web_client))
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = await public.post(TOKEN, content=b"grant_type=client_credentials", headers=headers)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_utf8_charset_parameter_is_accepted(
    public: httpx.AsyncClient, web_client: Client
) -> None:
    """S-24: a form body labelled charset=utf-8 is accepted."""
    response = await post_token(
        public,
        "grant_type=client_credentials",
        headers={**web_auth(web_client), "Content-Type": FORM + "; charset=UTF-8"},
    )
    assert response.status_code == 200, response.text


async def test_json_body_is_invalid_request(public: httpx.AsyncClient, web_client: Client) -> None:
    """S-24: a JSON body is refused with invalid_request, not parsed."""
    response = await public.post(
        TOKEN, json={"grant_type": "client_credentials"}, headers=web_auth(web_client)
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_oversized_body_is_refused(public: httpx.AsyncClient, web_client: Client) -> None:
    """R-19: a body over 16 KiB is refused with a JSON error."""
    body = "grant_type=client_credentials&scope=" + "a" * (16 * 1024)
    response = await post_token(public, body, headers=web_auth(web_client))
    assert response.status_code in (400, 413)
    assert response.json()["error"] == "invalid_request"


async def test_oversized_streamed_body_is_refused(
    public: httpx.AsyncClient, web_client: Client
) -> None:
    """R-19: a chunked body with no Content-Length is cut off past 16 KiB."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b"grant_type=client_credentials&scope="
        for _ in range(20):
            yield b"a" * 1024

    response = await public.post(
        TOKEN, content=chunks(), headers={**web_auth(web_client), "Content-Type": FORM}
    )
    assert response.status_code in (400, 413)
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("grant_type=client_credentials&client_id=%00", id="client_id"),
        pytest.param("grant_type=authorization_code&code=a%00b", id="code"),
        pytest.param("grant_type=password&username=%00&password=x", id="username"),
        pytest.param(
            "grant_type=authorization_code&code=x&redirect_uri=https://a.example/%00", id="redirect"
        ),
        pytest.param("grant_type=refresh_token&refresh_token=phrrt_%00", id="refresh_token"),
        pytest.param("grant_type=client_credentials&scope=read%00", id="scope"),
        pytest.param("grant_type=client_credentials&na%00me=x", id="name"),
    ],
)
async def test_nul_byte_is_400(public: httpx.AsyncClient, body: str) -> None:
    """R-19: a NUL byte anywhere in the form is 400 invalid_request, not a database error."""
    response = await post_token(public, body)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("grant_type=client_credentials&client_id=%FF", id="ff-value"),
        pytest.param("grant_type=client_credentials&client_id=%FF%FE", id="ff-fe"),
        pytest.param("grant_type=client_credentials&client_id=%C0%AF", id="overlong"),
        pytest.param("grant_type=client_credentials&client_id=%ED%B2%80", id="lone-surrogate"),
        pytest.param("grant_type=authorization_code&code=%ED%B2%80", id="surrogate-code"),
        pytest.param("grant_type=client_credentials&%FF=x", id="ff-name"),
        pytest.param(b"grant_type=client_credentials&client_id=\xff", id="raw-ff"),
    ],
)
async def test_invalid_utf8_is_400(public: httpx.AsyncClient, body: str | bytes) -> None:
    """R-19: invalid UTF-8 or a lone surrogate in the form is 400 invalid_request."""
    response = await post_token(public, body)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    "path", [pytest.param(TOKEN, id="canonical"), pytest.param(ALIAS, id="alias")]
)
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_other_methods_are_405(public: httpx.AsyncClient, path: str, method: str) -> None:
    """S-24: the token endpoint answers 405 to anything but POST."""
    response = await public.request(method, path + "?grant_type=client_credentials")
    assert response.status_code == 405


async def test_405_names_the_allowed_method(public: httpx.AsyncClient) -> None:
    """A GET to the token endpoint is told POST is allowed, in the usual JSON error shape."""
    response = await public.get(TOKEN)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["error"] == "method_not_allowed"


async def test_unknown_grant_type_is_unsupported(
    public: httpx.AsyncClient, web_client: Client
) -> None:
    """S-05: an unknown grant_type is 400 unsupported_grant_type."""
    for grant_type in ("implicit", "foo"):
        response = await post_token(
            public, {"grant_type": grant_type}, headers=web_auth(web_client)
        )
        assert response.status_code == 400
        assert response.json()["error"] == "unsupported_grant_type", grant_type


async def test_missing_grant_type_is_refused(
    public: httpx.AsyncClient,
    db: asyncpg.Connection,
    web_client: Client,
    code_pair: tuple[str, str],
) -> None:
    """RFC 6749 §4.1.3: a complete code request without grant_type issues nothing."""
    code, verifier = code_pair
    params = code_params(code, verifier)
    del params["grant_type"]
    response = await post_token(public, params, headers=web_auth(web_client))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert await db.fetchval("SELECT count(*) FROM tokens") == 0


# Brute force and error hygiene


@pytest.fixture
async def strict_public(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The public app pausing a client after three failed authentications."""
    async with public_app(database_url, client_max_failures="3") as client:
        yield client


async def test_client_brute_force_is_paused(
    strict_public: httpx.AsyncClient, web_client: Client
) -> None:
    """S-29: after the configured failures even the right secret gets 429 for a while."""
    for _ in range(3):
        wrong = await post_token(
            strict_public, CLIENT_CREDENTIALS, headers=basic(web_client["client_id"], "nope")
        )
        assert wrong.status_code == 401
    paused = await post_token(strict_public, CLIENT_CREDENTIALS, headers=web_auth(web_client))
    assert paused.status_code == 429
    assert paused.json()["error"] == "invalid_client"
    assert int(paused.headers["retry-after"]) > 0


async def test_client_recovers_after_the_pause(
    strict_public: httpx.AsyncClient, web_client: Client, db: asyncpg.Connection
) -> None:
    """S-29: the pause ends by itself: no permanent lockout an attacker could cause."""
    for _ in range(3):
        await post_token(
            strict_public, CLIENT_CREDENTIALS, headers=basic(web_client["client_id"], "nope")
        )
    await db.execute("UPDATE client_failures SET locked_until = now() - interval '1 second'")
    response = await post_token(strict_public, CLIENT_CREDENTIALS, headers=web_auth(web_client))
    assert response.status_code == 200


async def test_other_clients_are_not_paused(
    strict_public: httpx.AsyncClient, web_client: Client, introspector: Client
) -> None:
    """S-29: one client's failures pause only that client."""
    for _ in range(3):
        await post_token(
            strict_public, CLIENT_CREDENTIALS, headers=basic(web_client["client_id"], "nope")
        )
    response = await post_token(strict_public, CLIENT_CREDENTIALS, headers=web_auth(introspector))
    assert response.status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"grant_type=client_credentials&%22%5C%C3%A9=1&%22%5C%C3%A9=2", id="repeat"),
        pytest.param(b"grant_type=client_credentials&%22x%22=%FF", id="bad-utf8"),
        pytest.param(b"grant_type=client_credentials&%09tab=%01", id="control"),
    ],
)
async def test_error_description_uses_allowed_characters(
    public: httpx.AsyncClient, web_client: Client, body: bytes
) -> None:
    """S-33: error_description stays within %x20-21 / %x23-5B / %x5D-7E whatever was sent."""
    response = await post_token(public, body, headers=web_auth(web_client))
    assert response.status_code == 400
    description = response.json()["error_description"]
    assert all(" " <= c <= "~" and c not in '"\\' for c in description)
