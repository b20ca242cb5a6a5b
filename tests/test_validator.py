"""The validator, directly: each answer it gives oauthlib from a loaded Flow, and the intents it
records, without HTTP, a database or oauthlib's endpoints around it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from oauthlib.common import Request
from oauthlib.oauth2.rfc6749.errors import UnauthorizedClientError

from authserver.models import Client, CodeRow, TokenRow, User
from authserver.oauth.flow import Endpoint, Flow, active
from authserver.oauth.intents import (
    Audit,
    ClaimCode,
    CountAuthFailure,
    RevokeCodeFamilies,
    RevokeFamily,
    RevokeToken,
)
from authserver.oauth.params import ClientCredentials
from authserver.oauth.validator import Validator
from authserver.security.tokens import token_digest
from tests.oauth_support import ID_TOKENS, pkce_pair
from tests.rows import NOW, REDIRECT, token_row, web_client

CODE = "phrac_the-code"
REFRESH = "phrrt_the-refresh-token"

WEB = web_client(client_id="web-1")
DESKTOP = replace(WEB, client_id="desk-1", client_type="desktop")
VERIFIER, CHALLENGE = pkce_pair()


def validator() -> Validator:
    return Validator("https://auth.example.test", ID_TOKENS)


def flow(endpoint: Endpoint = "token", client: Client | None = WEB, **state: Any) -> Flow:
    made = Flow(
        endpoint,
        ClientCredentials(client.client_id if client else None, "s", "basic"),
        address="10.0.0.1",
    )
    made.client = client
    for name, value in state.items():
        setattr(made, name, value)
    return made


def request(**attributes: Any) -> Request:
    made = Request("https://auth.example.test/oauth2/token")
    for name, value in attributes.items():
        setattr(made, name, value)
    return made


def code_row(**changes: Any) -> CodeRow:
    row = CodeRow(
        digest=token_digest(CODE),
        client_id=WEB.client_id,
        user_id="alice-1",
        grant_id=7,
        redirect_uri=REDIRECT,
        scope="read",
        code_challenge=CHALLENGE,
        code_challenge_method="S256",
        consumed=False,
        live=True,
    )
    return replace(row, **changes)


def refresh_row(**changes: Any) -> TokenRow:
    return token_row(REFRESH, **{"client_id": WEB.client_id, "grant_id": 7, **changes})


def validate_code(state: Flow, **attributes: Any) -> bool:
    wanted = {"code_verifier": VERIFIER, "redirect_uri": REDIRECT, **attributes}
    with active(state):
        return bool(validator().validate_code(WEB.client_id, CODE, WEB, request(**wanted)))


# authorization codes (RFC 6749 §4.1.3, RFC 7636 §4.6)


def test_live_code_with_its_verifier_is_valid() -> None:
    """A live, unused code of this client, its verifier and redirect URI: valid."""
    assert validate_code(flow(code=code_row()))


@pytest.mark.parametrize(
    "row",
    [
        code_row(digest=token_digest("phrac_other")),
        code_row(client_id="someone-else"),
        code_row(live=False),
    ],
    ids=["other digest", "other client", "expired"],
)
def test_code_not_this_clients_or_expired_is_invalid(row: CodeRow) -> None:
    """Another code's row, another client's code or an expired code is invalid_grant."""
    assert not validate_code(flow(code=row))


def test_redirect_uri_must_be_the_one_the_code_was_issued_for() -> None:
    """RFC 6749 §4.1.3: the redirect_uri must be identical to the authorization request's."""
    assert not validate_code(flow(code=code_row()), redirect_uri=REDIRECT + "/other")


def test_verifier_without_a_challenge_is_a_downgrade() -> None:
    """RFC 9700 §4.8.2: a verifier for a code issued without PKCE is refused."""
    assert not validate_code(flow(code=code_row(code_challenge=None, code_challenge_method=None)))


@pytest.mark.parametrize(
    "verifier", ["short", "x" * 129, "a" * 42 + "!"], ids=["short", "long", "char"]
)
def test_malformed_verifier_is_refused(verifier: str) -> None:
    """RFC 7636 §4.1: 43 to 128 characters of the unreserved set, or nothing."""
    assert not validate_code(flow(code=code_row()), code_verifier=verifier)


def test_replayed_code_with_its_verifier_revokes_what_it_issued() -> None:
    """RFC 6749 §4.1.2: a code used twice revokes the tokens issued from it."""
    state = flow(code=code_row(consumed=True))
    assert not validate_code(state)
    assert RevokeCodeFamilies(token_digest(CODE)) in state.intents
    assert any(isinstance(i, Audit) and i.kind == "code.replay_detected" for i in state.intents)


def test_replay_with_a_wrong_verifier_revokes_nothing() -> None:
    """OAuth 2.1 §7.5.2: an invalid replay must not be a way to revoke someone's tokens."""
    state = flow(code=code_row(consumed=True))
    assert not validate_code(state, code_verifier=pkce_pair()[0])
    assert state.intents == []


def test_redeeming_records_the_claim() -> None:
    """Invalidating a code is recorded as a claim, for the store phase's conditional write."""
    state = flow(code=code_row())
    with active(state):
        validator().invalidate_authorization_code(WEB.client_id, CODE, request())
    assert state.intents == [ClaimCode(token_digest(CODE))]


# refresh tokens (RFC 6749 §6, RFC 9700 §4.14.2)


def validate_refresh(state: Flow) -> bool:
    with active(state):
        return bool(validator().validate_refresh_token(REFRESH, WEB, request()))


def test_live_refresh_token_is_valid() -> None:
    """An active refresh token of this client is valid."""
    assert validate_refresh(flow(token=refresh_row()))


def test_reused_refresh_token_revokes_its_family() -> None:
    """A rotated-out refresh token presented again kills every token of its family."""
    row = refresh_row(consumed=True)
    state = flow(token=row)
    assert not validate_refresh(state)
    assert row.family_id is not None
    assert RevokeFamily(row.family_id, row.digest) in state.intents


@pytest.mark.parametrize(
    "row",
    [
        refresh_row(kind="access"),
        refresh_row(client_id="someone-else"),
        refresh_row(revoked=True),
        refresh_row(live=False),
    ],
    ids=["access token", "other client", "revoked", "expired"],
)
def test_other_refresh_tokens_are_invalid_and_revoke_nothing(row: TokenRow) -> None:
    """Not a refresh token, not this client's, revoked or expired: refused, nothing recorded."""
    state = flow(token=row)
    assert not validate_refresh(state)
    assert state.intents == []


# client authentication (RFC 6749 §2.3) and grants


def test_failed_authentication_is_counted() -> None:
    """A client that sent a wrong secret is counted towards a pause (S-29)."""
    state = flow(client_authenticated=False)
    with active(state):
        assert not validator().authenticate_client(request())
    assert CountAuthFailure(WEB.client_id, "10.0.0.1") in state.intents


def test_introspection_always_needs_client_authentication() -> None:
    """A public client cannot introspect by naming itself (oauthlib would let it)."""
    state = flow("introspect", DESKTOP)
    state.credentials = ClientCredentials(DESKTOP.client_id, None, "none")
    with active(state):
        assert validator().client_authentication_required(request())


def test_public_client_at_the_token_endpoint_needs_no_secret() -> None:
    """A desktop app names itself at the token endpoint (RFC 8252 §8.5)."""
    state = flow("token", DESKTOP)
    state.credentials = ClientCredentials(DESKTOP.client_id, None, "none")
    with active(state):
        assert not validator().client_authentication_required(request())


@pytest.mark.parametrize(
    ("client", "grant_type", "allowed"),
    [
        (WEB, "client_credentials", True),
        (DESKTOP, "client_credentials", False),
        (WEB, "password", False),
        (replace(WEB, password_grant=True), "password", True),
        (DESKTOP, "authorization_code", True),
        (WEB, "refresh_token", True),
        (WEB, "implicit", False),
    ],
    ids=["cc web", "cc desktop", "password off", "password on", "code", "refresh", "implicit"],
)
def test_grant_types(client: Client, grant_type: str, allowed: bool) -> None:
    """Which client may use which grant."""
    with active(flow(client=client)):
        assert (
            validator().validate_grant_type(client.client_id, grant_type, client, request())
            is allowed
        )


def test_pkce_is_required_of_public_clients_whatever_their_row() -> None:
    """D17: desktop apps always need PKCE, even with a row that says otherwise."""
    lax_desktop = replace(DESKTOP, require_pkce=False)
    with active(flow(client=lax_desktop)):
        assert validator().is_pkce_required(DESKTOP.client_id, request())


def test_pkce_of_web_clients_follows_their_row() -> None:
    """D17: a web app needs PKCE when its require_pkce says so, and only then."""
    with active(flow(client=WEB)):
        assert validator().is_pkce_required(WEB.client_id, request())
    with active(flow(client=replace(WEB, require_pkce=False))):
        assert not validator().is_pkce_required(WEB.client_id, request())


def test_password_grant_of_a_client_without_it_is_unauthorized_client() -> None:
    """RFC 6749 §5.2: a client the owner did not enable gets unauthorized_client."""
    with active(flow()), pytest.raises(UnauthorizedClientError):
        validator().validate_user("alice", "pw", WEB, request())


def test_password_grant_trusts_the_sign_in_policy() -> None:
    """The user the sign-in policy signed in is the grant's user; none means refused."""
    client = replace(WEB, password_grant=True)
    alice = User("alice-1", "alice", None, "", None, NOW, NOW)
    made = request()
    with active(flow(client=client, user=alice)):
        assert validator().validate_user("alice", "pw", client, made)
    assert made.user == "alice-1"
    with active(flow(client=client)):
        assert not validator().validate_user("alice", "pw", client, request())


# revocation (RFC 7009 §2.1)


def test_a_client_revokes_its_own_token() -> None:
    """Revoking one's own token records its revocation."""
    row = refresh_row()
    state = flow("revoke", token=row)
    with active(state):
        validator().revoke_token(REFRESH, None, request(client=WEB))
    assert RevokeToken(row.digest, WEB.client_id) in state.intents


def test_another_clients_token_is_left_alone() -> None:
    """Another client's token: 200, and nothing revoked (RFC 7009 §2.1)."""
    state = flow("revoke", token=refresh_row(client_id="someone-else"))
    with active(state):
        validator().revoke_token(REFRESH, None, request(client=WEB))
    assert state.intents == []
