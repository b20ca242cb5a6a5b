"""A third-party relying party, npm ``openid-client`` (tests/rp/), against a live server, with
a real headless Chromium on the login, consent and sign-out pages.

One run for the module (``rp_run``), each flow with a fresh RP process: discovery; the code flow
with PKCE S256, state and nonce, through the real login and consent pages; the code exchange
(openid-client checks the ID token's signature against the JWKS, its alg, iss, aud, nonce,
exp, iat, and state and iss on the way back); UserInfo; a refresh; RP-initiated logout through
the confirmation page. Once for an RS256 client (client_secret_basic) and once for an ES256
client (client_secret_post), then again for both after a key rotation (``POST /keys/rotate``)
has made new keys sign; then for a public desktop client with max_age; then answers other than
a code: a denial, prompt=none. The tests assert on what the flows collected; anything
openid-client refuses that it should accept fails the whole module.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.wait import WebDriverWait

from tests.conftest import ADMIN_TOKEN, ALICE_PASSWORD, create_database, drop_database
from tests.rp_support import (
    Landing,
    RelyingParty,
    RelyingPartyError,
    chromium,
    node,
    serving,
)
from tests.test_browser import Live, require_chromium

# The whole run: a server, eight browser flows and a rotation, on a shared 2-CPU machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SCOPE = "openid profile email"
# Each client authenticates to the token endpoint its own way (both are advertised).
CLIENT_AUTH = {"RS256": "client_secret_basic", "ES256": "client_secret_post"}
APP_NAME = "Quokka Contact Sheets"
PROPAGATION = 1  # seconds a new signing key is published before it signs
WAIT = 15.0  # seconds any one browser or listener wait may take
HTTP_TIMEOUT = 10.0


@dataclass(frozen=True)
class Flow:
    """What one relying party saw and did, from discovery to signing out."""

    alg: str
    client_id: str
    metadata: dict[str, Any]
    asked: dict[str, Any]  # the authorization request: its URL, state and nonce
    login_shown: bool
    consent_shown: bool
    callback: dict[str, list[str]]  # the query the browser brought to the redirect URI
    signed_in: dict[str, Any]  # the code exchange: ID token header and claims, as validated
    exchanged_at: float  # time.monotonic() then
    userinfo: dict[str, Any]
    refreshed: dict[str, Any]  # the refresh: the new ID token's header and claims
    logout_state: str
    logout_page: str  # the confirmation page's text
    signed_out: str  # the URL the browser landed on afterwards


@dataclass(frozen=True)
class Run:
    issuer: str
    user_id: str
    jwks_before: list[dict[str, Any]]  # the published keys before the rotation
    rotated: dict[str, str]  # alg → the kid the rotation made
    before: dict[str, Flow]  # alg → the flow before the rotation
    after: dict[str, Flow]
    # The RS256 RP of the first flow, its JWKS copy fetched before the rotation, refreshing
    # after it: openid-client's error, and how old its copy was.
    stale_refresh: dict[str, Any]
    stale_age: float
    old_hint_logout: tuple[str, str]  # its sign-out after the rotation: state, landing URL
    desktop: Flow  # a public client's flow, with max_age
    denied: Answered  # Alice denies on the consent page (prompt=consent)
    silent: Answered  # prompt=none, signed in, consent remembered
    unvouched: Answered  # prompt=none for a public client


@dataclass(frozen=True)
class Answered:
    """One authorization request and what openid-client made of the answer: the ID token when
    the code exchange succeeded, else the error it raised."""

    asked: dict[str, Any]
    login_shown: bool
    consent_shown: bool
    signed_in: dict[str, Any] | None
    error: dict[str, Any] | None


# the browser's part of a flow


def _present(driver: WebDriver, css: str) -> bool:
    return bool(driver.find_elements(By.CSS_SELECTOR, css))


def sign_in(
    driver: WebDriver, url: str, landing: Landing, decision: str = "allow"
) -> tuple[bool, bool]:
    """Follow the RP's authorization URL: sign in as Alice if asked, answer ``decision`` if
    asked. Whether the login page and the consent page were shown."""
    driver.get(url)

    def settled(driver: WebDriver) -> bool:
        return (
            _present(driver, "#username")
            or _present(driver, "button[name=decision]")
            or driver.current_url.startswith(landing.url)
        )

    WebDriverWait(driver, WAIT).until(settled, "the authorization URL led nowhere")
    login_shown = _present(driver, "#username")
    if login_shown:
        assert APP_NAME in driver.find_element(By.TAG_NAME, "main").text
        driver.find_element(By.ID, "username").send_keys("alice")
        driver.find_element(By.ID, "password").send_keys(ALICE_PASSWORD)
        driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        WebDriverWait(driver, WAIT).until(
            lambda d: _present(d, "button[name=decision]") or d.current_url.startswith(landing.url),
            f"signing in led nowhere:\n{driver.page_source}",
        )
    consent_shown = _present(driver, "button[name=decision]")
    if consent_shown:
        driver.find_element(By.CSS_SELECTOR, f"button[name=decision][value={decision}]").click()
    return login_shown, consent_shown


def sign_out(driver: WebDriver, url: str) -> str:
    """Follow the RP's end-session URL and confirm; the confirmation page's text."""
    driver.get(url)
    button = WebDriverWait(driver, WAIT).until(
        lambda d: d.find_element(By.CSS_SELECTOR, "form button[type=submit]"),
        f"no sign-out confirmation:\n{driver.page_source}",
    )
    text: str = driver.find_element(By.TAG_NAME, "main").text
    button.click()
    return text


def discover(rp: RelyingParty, live: Live, client: dict[str, Any]) -> dict[str, Any]:
    """Set the RP up for ``client`` from the server's discovery document; the document."""
    alg = client["id_token_signed_response_alg"]
    metadata: dict[str, Any] = rp.step(
        "discover",
        issuer=live.public_url,
        client_id=client["client_id"],
        client_secret=client["client_secret"],
        auth="none" if client["client_secret"] is None else CLIENT_AUTH[alg],
        alg=alg,
    )["metadata"]
    return metadata


def openid_flow(
    rp: RelyingParty,
    live: Live,
    client: dict[str, Any],
    driver: WebDriver,
    landing: Landing,
    **extra: str,
) -> Flow:
    """The whole relying-party flow, by a fresh openid-client (its own discovery and JWKS);
    ``extra`` authorization request parameters."""
    metadata = discover(rp, live, client)
    asked = rp.step("authorize", redirect_uri=landing.url + "/cb", scope=SCOPE, extra=extra)
    login_shown, consent_shown = sign_in(driver, asked["url"], landing)
    callback_url = landing.visit(WAIT)
    signed_in = rp.step("callback", url=callback_url)
    exchanged_at = time.monotonic()  # about when the RP fetched the JWKS
    userinfo = rp.step("userinfo")["userinfo"]
    refreshed = rp.step("refresh")
    logout_state = secrets.token_urlsafe(12)
    logout_url = rp.step(
        "logout",
        post_logout_redirect_uri=landing.url + "/signed-out",
        state=logout_state,
    )["url"]
    logout_page = sign_out(driver, logout_url)
    return Flow(
        alg=client["id_token_signed_response_alg"],
        client_id=client["client_id"],
        metadata=metadata,
        asked=asked,
        login_shown=login_shown,
        consent_shown=consent_shown,
        callback=parse_qs(urlsplit(callback_url).query),
        signed_in=signed_in,
        exchanged_at=exchanged_at,
        userinfo=userinfo,
        refreshed=refreshed,
        logout_state=logout_state,
        logout_page=logout_page,
        signed_out=landing.visit(WAIT),
    )


def authorization(
    rp: RelyingParty,
    live: Live,
    client: dict[str, Any],
    driver: WebDriver,
    landing: Landing,
    decision: str,
    **extra: str,
) -> Answered:
    """One authorization request, answered ``decision`` if a consent page asks."""
    discover(rp, live, client)
    asked = rp.step("authorize", redirect_uri=landing.url + "/cb", scope=SCOPE, extra=extra)
    login_shown, consent_shown = sign_in(driver, asked["url"], landing, decision)
    callback_url = landing.visit(WAIT)
    try:
        signed_in, error = rp.step("callback", url=callback_url), None
    except RelyingPartyError as refused:
        if refused.error is None:
            raise  # the driver failed, not the authorization
        signed_in, error = None, refused.error
    return Answered(asked, login_shown, consent_shown, signed_in, error)


# provisioning and rotation through the admin API


def provision(admin: httpx.Client, landing: Landing) -> tuple[str, dict[str, dict[str, Any]]]:
    """Alice, one web client per ID token algorithm and a desktop client; Alice's id and the
    clients ("RS256", "ES256", "desktop")."""
    owner = admin.put("/users/owner-1", json={"login": "olivia", "email": "olivia@example.com"})
    assert owner.status_code == 201, owner.text
    alice = admin.put(
        "/users/alice-1",
        json={
            "login": "alice",
            "email": "alice@example.com",
            "display_name": "Alice Liddell",
            "password": ALICE_PASSWORD,
        },
    )
    assert alice.status_code == 201, alice.text
    clients = {}
    for name, kind, alg, redirect_uri in (
        ("RS256", "web", "RS256", landing.url + "/cb"),
        ("ES256", "web", "ES256", landing.url + "/cb"),
        # RFC 8252 §7.3: a desktop app registers its loopback URI without the port it will use.
        ("desktop", "desktop", "RS256", "http://127.0.0.1/cb"),
    ):
        made = admin.post(
            "/clients",
            json={
                "name": APP_NAME,
                "website": "https://quokka.example/",
                "type": kind,
                "redirect_uris": [redirect_uri],
                "post_logout_redirect_uris": [landing.url + "/signed-out"],
                "id_token_signed_response_alg": alg,
                "owner_id": owner.json()["user_id"],
            },
        )
        assert made.status_code == 201, made.text
        clients[name] = made.json()
    return alice.json()["user_id"], clients


def rotate(admin: httpx.Client) -> dict[str, str]:
    """Rotate the signing keys and wait until the new ones sign; the new kid per alg."""
    answer = admin.post("/keys/rotate")
    assert answer.status_code == 201, answer.text
    made = set(answer.json()["rotated"])
    deadline = time.monotonic() + PROPAGATION + WAIT
    while time.monotonic() < deadline:
        keys = admin.get("/keys").json()["keys"]
        signing = {key["alg"]: key["kid"] for key in keys if key["kid"] in made and key["signing"]}
        if len(signing) == len(made):
            return signing
        time.sleep(0.2)
    raise TimeoutError(f"the rotated keys did not start signing: {keys}")


@pytest.fixture(scope="module")
def rp_run(
    cluster_url: str, template_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Run]:
    require_chromium()
    node()  # fails, saying how to install openid-client, before anything starts
    folder = tmp_path_factory.mktemp("rp")
    database_url = asyncio.run(create_database(cluster_url, template_database))
    landing = Landing()
    try:
        with ExitStack() as stack:
            live = stack.enter_context(
                serving(database_url, folder / "server.log", propagation=PROPAGATION)
            )
            driver = stack.enter_context(chromium())
            admin = stack.enter_context(
                httpx.Client(
                    base_url=live.admin_url,
                    headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                    timeout=HTTP_TIMEOUT,
                )
            )
            user_id, clients = provision(admin, landing)
            jwks_before = httpx.get(live.public_url + "/.well-known/jwks.json").json()["keys"]
            log = stack.enter_context((folder / "rp.log").open("ab"))

            def flow(client: dict[str, Any]) -> tuple[RelyingParty, Flow]:
                rp = stack.enter_context(RelyingParty(log))
                return rp, openid_flow(rp, live, client, driver, landing)

            kept, first = flow(clients["RS256"])  # its JWKS copy outlives the rotation
            before = {"RS256": first, "ES256": flow(clients["ES256"])[1]}
            rotated = rotate(admin)
            stale = kept.refusal("refresh")
            stale_age = time.monotonic() - first.exchanged_at
            # Its last ID token, signed by the retired key, still names it when it signs out
            # (the browser has no session any more: straight back to the RP).
            old_hint_state = secrets.token_urlsafe(12)
            driver.get(
                kept.step(
                    "logout",
                    post_logout_redirect_uri=landing.url + "/signed-out",
                    state=old_hint_state,
                )["url"]
            )
            old_hint_logout = (old_hint_state, landing.visit(WAIT))
            after = {alg: flow(clients[alg])[1] for alg in ("RS256", "ES256")}
            # A public client, asking that the sign-in be at most ten minutes old.
            public = stack.enter_context(RelyingParty(log))
            desktop = openid_flow(public, live, clients["desktop"], driver, landing, max_age="600")

            def request(client: dict[str, Any], decision: str, **extra: str) -> Answered:
                rp = stack.enter_context(RelyingParty(log))
                return authorization(rp, live, client, driver, landing, decision, **extra)

            # Signed out now: sign in again, and refuse on a consent page asked for.
            denied = request(clients["RS256"], "deny", prompt="consent")
            # Signed in, with consent remembered: no page at all.
            silent = request(clients["RS256"], "allow", prompt="none")
            # Signed in, but a public client always asks for consent (nobody can vouch for it).
            unvouched = request(clients["desktop"], "allow", prompt="none")
            yield Run(
                issuer=live.public_url,
                user_id=user_id,
                jwks_before=jwks_before,
                rotated=rotated,
                before=before,
                after=after,
                stale_refresh=stale,
                stale_age=stale_age,
                old_hint_logout=old_hint_logout,
                desktop=desktop,
                denied=denied,
                silent=silent,
                unvouched=unvouched,
            )
    finally:
        landing.close()
        asyncio.run(drop_database(cluster_url, database_url))


def flows(run: Run) -> list[Flow]:
    return [*run.before.values(), *run.after.values()]


# discovery and the authorization request


def test_discovery_is_for_the_live_issuer(rp_run: Run) -> None:
    """openid-client's discovery accepted the document and its issuer is the server's URL."""
    metadata = rp_run.before["RS256"].metadata
    assert metadata["issuer"] == rp_run.issuer
    assert metadata["end_session_endpoint"] == rp_run.issuer + "/oauth2/logout"
    assert metadata["jwks_uri"] == rp_run.issuer + "/.well-known/jwks.json"


def test_authorization_url_asks_for_code_with_pkce_state_and_nonce(rp_run: Run) -> None:
    """The URL openid-client built is a code request with S256 PKCE, state and nonce."""
    asked = rp_run.before["RS256"].asked
    params = parse_qs(urlsplit(asked["url"]).query)
    assert params["response_type"] == ["code"]
    assert params["code_challenge_method"] == ["S256"]
    assert params["scope"] == [SCOPE]
    assert params["state"] == [asked["state"]]
    assert params["nonce"] == [asked["nonce"]]


def test_first_sign_in_shows_login_and_consent(rp_run: Run) -> None:
    """A new client's first flow goes through the login page and the consent page."""
    for flow in rp_run.before.values():
        assert flow.login_shown
        assert flow.consent_shown


def test_redirect_carries_code_state_and_iss(rp_run: Run) -> None:
    """The browser comes back to the RP with a code, the RP's state and the issuer."""
    for flow in flows(rp_run):
        assert len(flow.callback["code"]) == 1
        assert flow.callback["state"] == [flow.asked["state"]]
        assert flow.callback["iss"] == [rp_run.issuer]


# the ID token from the code exchange


def test_id_token_names_the_user_the_client_and_the_nonce(rp_run: Run) -> None:
    """The validated ID token's sub, aud, azp, iss and nonce are Alice, the client, the RP's."""
    for flow in flows(rp_run):
        claims = flow.signed_in["claims"]
        assert claims["sub"] == rp_run.user_id
        assert claims["aud"] == flow.client_id
        assert claims["azp"] == flow.client_id
        assert claims["iss"] == rp_run.issuer
        assert claims["nonce"] == flow.asked["nonce"]


def test_id_token_says_when_the_user_signed_in(rp_run: Run) -> None:
    """auth_time (which the RP requires) is the sign-in, at or before the token's iat."""
    for flow in flows(rp_run):
        claims = flow.signed_in["claims"]
        assert claims["iat"] - 120 <= claims["auth_time"] <= claims["iat"]


def test_id_token_at_hash_matches_the_access_token(rp_run: Run) -> None:
    """The RP found an at_hash and it is the left half of the access token's SHA-256."""
    for flow in flows(rp_run):
        assert flow.signed_in["at_hash_verified"] is True


def test_id_token_carries_profile_and_email_claims(rp_run: Run) -> None:
    """With profile and email granted, the ID token says Alice's name, login and e-mail."""
    claims = rp_run.before["RS256"].signed_in["claims"]
    assert claims["name"] == "Alice Liddell"
    assert claims["preferred_username"] == "alice"
    assert claims["email"] == "alice@example.com"
    assert isinstance(claims["email_verified"], bool)


def test_token_response_grants_the_scopes_and_a_refresh_token(rp_run: Run) -> None:
    """The code exchange grants what was asked, as a bearer token with a refresh token."""
    signed_in = rp_run.before["RS256"].signed_in
    assert sorted(signed_in["scope"].split()) == sorted(SCOPE.split())
    assert signed_in["token_type"] == "bearer"
    assert signed_in["has_refresh_token"] is True


def test_id_token_is_signed_by_a_published_key_of_the_clients_alg(rp_run: Run) -> None:
    """Each client's ID token is signed with its registered alg by a key in the JWKS."""
    published = {(key["kid"], key["alg"]) for key in rp_run.jwks_before}
    for alg, flow in rp_run.before.items():
        header = flow.signed_in["header"]
        assert header["alg"] == alg
        assert (header["kid"], alg) in published


# UserInfo, refresh


def test_userinfo_answers_for_the_id_tokens_subject(rp_run: Run) -> None:
    """UserInfo (openid-client checks its sub) returns Alice's granted claims."""
    for flow in flows(rp_run):
        assert flow.userinfo["sub"] == rp_run.user_id
        assert flow.userinfo["preferred_username"] == "alice"
        assert flow.userinfo["email"] == "alice@example.com"


def test_refreshed_id_token_keeps_the_sign_in(rp_run: Run) -> None:
    """A refresh's ID token keeps iss, sub, aud, azp and auth_time (Core §12.2)."""
    for flow in flows(rp_run):
        first, again = flow.signed_in["claims"], flow.refreshed["claims"]
        for claim in ("iss", "sub", "aud", "azp", "auth_time"):
            assert again[claim] == first[claim], claim
        assert again["iat"] >= first["iat"]


def test_refreshed_id_token_has_no_nonce(rp_run: Run) -> None:
    """A refresh is no authentication request: its ID token carries no nonce."""
    for flow in flows(rp_run):
        assert "nonce" not in flow.refreshed["claims"]


def test_refreshed_id_token_has_a_matching_at_hash(rp_run: Run) -> None:
    """The refreshed ID token's at_hash is that of the new access token."""
    for flow in flows(rp_run):
        assert flow.refreshed["at_hash_verified"] is True


# RP-initiated logout


def test_logout_page_names_the_application(rp_run: Run) -> None:
    """The confirmation page, reached from openid-client's end-session URL, names the app."""
    for flow in flows(rp_run):
        assert APP_NAME in flow.logout_page


def test_logout_lands_on_the_post_logout_uri_with_the_state(rp_run: Run) -> None:
    """Confirming sends the browser to the registered post-logout URI with the RP's state."""
    for flow in flows(rp_run):
        landed = urlsplit(flow.signed_out)
        assert landed.path == "/signed-out"
        assert parse_qs(landed.query) == {"state": [flow.logout_state]}


def test_signing_out_ends_the_session(rp_run: Run) -> None:
    """After signing out, the next flow asks for the password again."""
    for flow in rp_run.after.values():
        assert flow.login_shown


def test_consent_is_remembered_across_sign_ins(rp_run: Run) -> None:
    """The second flow of a client skips the consent page Alice already answered."""
    for flow in rp_run.after.values():
        assert not flow.consent_shown


# key rotation


def test_rotation_makes_new_keys_for_both_algs(rp_run: Run) -> None:
    """The rotation made one new key per algorithm, none of them published before."""
    before = {key["kid"] for key in rp_run.jwks_before}
    assert set(rp_run.rotated) == {"RS256", "ES256"}
    assert not set(rp_run.rotated.values()) & before


def test_after_rotation_id_tokens_are_signed_by_the_new_key(rp_run: Run) -> None:
    """openid-client validates ID tokens signed by the new kid, for each alg."""
    for alg, flow in rp_run.after.items():
        header = flow.signed_in["header"]
        assert header == {**header, "alg": alg, "kid": rp_run.rotated[alg]}
        assert header["kid"] != rp_run.before[alg].signed_in["header"]["kid"]


def test_after_rotation_refreshed_id_tokens_are_signed_by_the_new_key(rp_run: Run) -> None:
    """A refresh after the rotation is signed by the new kid too."""
    for alg, flow in rp_run.after.items():
        assert flow.refreshed["header"]["kid"] == rp_run.rotated[alg]


def test_rp_with_a_fresh_jwks_copy_refuses_a_kid_it_lacks(rp_run: Run) -> None:
    """openid-client, whose JWKS copy is under a minute old, does not fetch it again for the
    new kid: why the default key propagation is over a minute (oidc.keys.RP_REFETCH_PAUSE)."""
    assert rp_run.stale_age < 60  # else openid-client would have fetched the JWKS again
    assert rp_run.stale_refresh["code"] == "OAUTH_KEY_SELECTION_FAILED"


def test_id_token_hint_signed_by_a_retired_key_still_signs_out(rp_run: Run) -> None:
    """An end-session request whose id_token_hint the replaced key signed is still followed."""
    state, landed = rp_run.old_hint_logout
    assert urlsplit(landed).path == "/signed-out"
    assert parse_qs(urlsplit(landed).query) == {"state": [state]}


def test_before_rotation_refreshes_are_signed_by_the_old_key(rp_run: Run) -> None:
    """Before the rotation the code and refresh ID tokens share one kid."""
    for flow in rp_run.before.values():
        assert flow.refreshed["header"]["kid"] == flow.signed_in["header"]["kid"]


# a public client, and answers other than a code


def test_public_client_signs_in_refreshes_and_signs_out(rp_run: Run) -> None:
    """A desktop app (no secret, PKCE alone, any loopback port) goes through the whole flow."""
    flow = rp_run.desktop
    assert flow.signed_in["claims"]["aud"] == flow.client_id
    assert flow.refreshed["claims"]["sub"] == rp_run.user_id
    assert urlsplit(flow.signed_out).path == "/signed-out"


def test_max_age_request_gets_an_auth_time_openid_client_accepts(rp_run: Run) -> None:
    """With max_age asked, the ID token has the auth_time openid-client checks against it."""
    desktop = rp_run.desktop
    assert parse_qs(urlsplit(desktop.asked["url"]).query)["max_age"] == ["600"]
    claims = desktop.signed_in["claims"]
    assert claims["iat"] - 600 <= claims["auth_time"] <= claims["iat"]


def test_deny_reaches_the_rp_as_access_denied(rp_run: Run) -> None:
    """Deny on a consent page (prompt=consent) raises access_denied in openid-client, not an
    issuer or state error: the error response carries both."""
    denied = rp_run.denied
    assert denied.consent_shown
    assert denied.signed_in is None
    assert denied.error is not None
    assert denied.error["code"] == "OAUTH_AUTHORIZATION_RESPONSE_ERROR"
    assert denied.error["error"] == "access_denied"


def test_prompt_none_signs_in_silently_with_remembered_consent(rp_run: Run) -> None:
    """prompt=none, signed in, consent remembered: a code with no page, an ID token whose
    auth_time is the sign-in before it."""
    silent = rp_run.silent
    assert (silent.login_shown, silent.consent_shown) == (False, False)
    assert silent.signed_in is not None
    assert silent.signed_in["claims"]["sub"] == rp_run.user_id
    assert silent.signed_in["claims"]["auth_time"] <= silent.signed_in["claims"]["iat"]


def test_prompt_none_for_a_public_client_is_consent_required(rp_run: Run) -> None:
    """prompt=none for a public client answers consent_required, without showing a page."""
    unvouched = rp_run.unvouched
    assert (unvouched.login_shown, unvouched.consent_shown) == (False, False)
    assert unvouched.error is not None
    assert unvouched.error["error"] == "consent_required"
