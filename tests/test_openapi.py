"""The admin API's OpenAPI document: valid, in step with the routes, and true to the answers."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any, TypeAlias

import httpx
import hypothesis
import pytest
import schemathesis
import yaml
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error

from authserver.clients import CREATE_FIELDS, UPDATE_FIELDS
from authserver.files import data_dir
from authserver.http.admin import AdminApi
from authserver.http.admin_auth import OPEN_PATHS
from authserver.http.apps import ADMIN_OPEN_ROUTES
from authserver.users import UPSERT_FIELDS
from tests.conftest import ADMIN_TOKEN

Operation: TypeAlias = APIOperation[Any, Any, Any, Any]
AnyCase: TypeAlias = Case[Any]

SPEC_PATH: Path = data_dir("openapi") / "admin.yaml"
SPEC_URI = "urn:authserver:openapi:admin"
ALICE = {"login": "alice", "email": "alice@example.com", "display_name": "Alice"}
DESKTOP = {
    "name": "Photo Desk",
    "website": "https://photodesk.example",
    "type": "desktop",
    "owner_id": "owner-1",
}


@cache
def spec() -> dict[str, Any]:
    """The document, parsed once."""
    document: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    return document


@cache
def registry() -> Registry[Any]:
    """The document as a JSON Schema resource, so ``$ref``s inside it resolve."""
    resource: Resource[Any] = Resource.from_contents(spec(), default_specification=DRAFT202012)
    document: Registry[Any] = Registry().with_resource(SPEC_URI, resource)
    return document


def pointer(*parts: str) -> str:
    """A JSON pointer fragment to ``parts`` of the document (RFC 6901 escaping)."""
    return "#/" + "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


def declared_response(path: str, method: str, status: int) -> tuple[str, dict[str, Any]]:
    """Where the declared response object for ``status`` lives, and the object itself."""
    responses = spec()["paths"][path][method.lower()]["responses"]
    assert str(status) in responses, f"{method} {path} does not declare {status}"
    location = pointer("paths", path, method.lower(), "responses", str(status))
    declared: dict[str, Any] = responses[str(status)]
    if "$ref" in declared:
        location = declared["$ref"]
        *_, name = location.split("/")
        declared = spec()["components"]["responses"][name]
    return location, declared


def validator(location: str) -> Draft202012Validator:
    """A draft 2020-12 validator for the schema at ``location`` in the document."""
    return Draft202012Validator(
        {"$ref": SPEC_URI + location},
        registry=registry(),
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def assert_conforms(response: httpx.Response, path: str, method: str) -> None:
    """``response`` has a declared status, its declared headers and a body of its schema."""
    location, declared = declared_response(path, method, response.status_code)
    for name, header in declared.get("headers", {}).items():
        if "$ref" in header:
            header = spec()["components"]["headers"][header["$ref"].rsplit("/", 1)[1]]
        if name in response.headers:
            Draft202012Validator(header["schema"]).validate(response.headers[name])
        else:
            assert not header.get("required", False), f"header {name} is missing"
    if "content" not in declared:
        assert response.content == b""
        return
    assert response.headers["content-type"].split(";")[0] == "application/json"
    schema_location = location + "/" + "/".join(("content", "application~1json", "schema"))
    validator(schema_location).validate(response.json())


def spec_operations() -> set[tuple[str, str]]:
    """Every (path, method) the document describes."""
    methods = {"get", "put", "post", "patch", "delete", "head", "options", "trace"}
    return {
        (path, method.upper())
        for path, item in spec()["paths"].items()
        for method in item
        if method in methods
    }


# The document itself


async def test_document_is_valid_openapi_31() -> None:
    """The document is a valid OpenAPI 3.1 document."""
    assert spec()["openapi"].startswith("3.1.")
    OpenAPIV31SpecValidator(spec()).validate()


async def test_document_matches_admin_routes() -> None:
    """The document describes exactly the admin app's routes and methods."""
    routed = {(path, method) for path, method, _ in AdminApi.ROUTES} | set(ADMIN_OPEN_ROUTES)
    assert routed == spec_operations()


async def test_only_probes_are_open() -> None:
    """Every operation needs the admin bearer token except the probes and the metrics."""
    open_paths = {
        path
        for path, item in spec()["paths"].items()
        for operation in item.values()
        if isinstance(operation, dict) and operation.get("security") == []
    }
    assert open_paths == OPEN_PATHS == {path for path, _ in ADMIN_OPEN_ROUTES}
    assert spec()["security"] == [{"adminToken": []}]
    scheme = spec()["components"]["securitySchemes"]["adminToken"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")


# Real answers against the declared response schemas


async def test_created_user_conforms(admin: httpx.AsyncClient) -> None:
    """A 201 from PUT /users/{user_id} matches its declared schema."""
    response = await admin.put("/users/u-1", json={**ALICE, "password": "s3cret pass"})
    assert response.status_code == 201
    assert_conforms(response, "/users/{user_id}", "PUT")


async def test_replaced_user_conforms(admin: httpx.AsyncClient) -> None:
    """A 200 from PUT /users/{user_id} (with a null email) matches its declared schema."""
    await admin.put("/users/u-1", json=ALICE)
    response = await admin.put("/users/u-1", json={**ALICE, "email": None})
    assert response.status_code == 200
    assert_conforms(response, "/users/{user_id}", "PUT")


async def test_fetched_user_conforms(admin: httpx.AsyncClient, owner: dict[str, Any]) -> None:
    """A 200 from GET /users/{user_id} matches its declared schema."""
    response = await admin.get(f"/users/{owner['user_id']}")
    assert response.status_code == 200
    assert_conforms(response, "/users/{user_id}", "GET")


async def test_deleted_user_conforms(admin: httpx.AsyncClient, owner: dict[str, Any]) -> None:
    """A 204 from DELETE /users/{user_id} has no body, as declared."""
    response = await admin.delete(f"/users/{owner['user_id']}")
    assert response.status_code == 204
    assert_conforms(response, "/users/{user_id}", "DELETE")


async def test_created_web_client_conforms(admin: httpx.AsyncClient, owner: dict[str, Any]) -> None:
    """A 201 from POST /clients for a web app, with its secret, matches its declared schema."""
    response = await admin.post(
        "/clients",
        json={
            "name": "Photo Sync",
            "website": "https://photosync.example",
            "type": "web",
            "redirect_uris": ["https://photosync.example/cb"],
            "owner_id": owner["user_id"],
        },
    )
    assert response.status_code == 201
    assert response.json()["client_secret"].startswith("phrcs_")
    assert_conforms(response, "/clients", "POST")


async def test_created_desktop_client_conforms(
    admin: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    """A 201 from POST /clients for a desktop app, with a null secret, matches its schema."""
    response = await admin.post("/clients", json={**DESKTOP, "owner_id": owner["user_id"]})
    assert response.status_code == 201
    assert response.json()["client_secret"] is None
    assert_conforms(response, "/clients", "POST")


async def test_client_list_conforms(
    admin: httpx.AsyncClient, owner: dict[str, Any], web_client: dict[str, Any]
) -> None:
    """A full page from GET /clients, with its next_after cursor, matches its declared schema."""
    await admin.post("/clients", json={**DESKTOP, "owner_id": owner["user_id"]})
    response = await admin.get("/clients", params={"owner_id": owner["user_id"], "limit": "1"})
    assert response.status_code == 200
    assert "next_after" in response.json()
    assert_conforms(response, "/clients", "GET")


async def test_fetched_client_conforms(
    admin: httpx.AsyncClient, web_client: dict[str, Any]
) -> None:
    """A 200 from GET /clients/{client_id} matches its declared schema, without a secret."""
    response = await admin.get(f"/clients/{web_client['client_id']}")
    assert response.status_code == 200
    assert_conforms(response, "/clients/{client_id}", "GET")


async def test_patched_client_conforms(
    admin: httpx.AsyncClient, web_client: dict[str, Any]
) -> None:
    """A 200 from PATCH /clients/{client_id} matches its declared schema."""
    response = await admin.patch(
        f"/clients/{web_client['client_id']}", json={"name": "Photo Sync Pro", "active": False}
    )
    assert response.status_code == 200
    assert_conforms(response, "/clients/{client_id}", "PATCH")


async def test_deleted_client_conforms(
    admin: httpx.AsyncClient, web_client: dict[str, Any]
) -> None:
    """A 204 from DELETE /clients/{client_id} has no body, as declared."""
    response = await admin.delete(f"/clients/{web_client['client_id']}")
    assert response.status_code == 204
    assert_conforms(response, "/clients/{client_id}", "DELETE")


async def test_rotated_secret_conforms(
    admin: httpx.AsyncClient, web_client: dict[str, Any]
) -> None:
    """A 201 from POST /clients/{client_id}/secret matches its declared schema."""
    response = await admin.post(f"/clients/{web_client['client_id']}/secret")
    assert response.status_code == 201
    assert_conforms(response, "/clients/{client_id}/secret", "POST")


async def test_developer_token_conforms(
    admin: httpx.AsyncClient, web_client: dict[str, Any]
) -> None:
    """A 201 from POST /clients/{client_id}/developer-token matches its declared schema."""
    response = await admin.post(f"/clients/{web_client['client_id']}/developer-token")
    assert response.status_code == 201
    assert_conforms(response, "/clients/{client_id}/developer-token", "POST")


async def test_grant_list_conforms(
    admin: httpx.AsyncClient, owner: dict[str, Any], web_client: dict[str, Any]
) -> None:
    """A non-empty list from GET /users/{user_id}/grants matches its declared schema."""
    await admin.post(f"/clients/{web_client['client_id']}/developer-token")
    response = await admin.get(f"/users/{owner['user_id']}/grants")
    assert response.status_code == 200
    assert len(response.json()["grants"]) == 1
    assert_conforms(response, "/users/{user_id}/grants", "GET")


async def test_revoked_grant_conforms(
    admin: httpx.AsyncClient, owner: dict[str, Any], web_client: dict[str, Any]
) -> None:
    """A 204 from DELETE /users/{user_id}/grants/{client_id} has no body, as declared."""
    await admin.post(f"/clients/{web_client['client_id']}/developer-token")
    response = await admin.delete(f"/users/{owner['user_id']}/grants/{web_client['client_id']}")
    assert response.status_code == 204
    assert_conforms(response, "/users/{user_id}/grants/{client_id}", "DELETE")


async def test_active_introspection_conforms(
    admin: httpx.AsyncClient, web_client: dict[str, Any]
) -> None:
    """An active answer from POST /introspect (a developer token) matches its declared schema."""
    issued = await admin.post(f"/clients/{web_client['client_id']}/developer-token")
    response = await admin.post("/introspect", json={"token": issued.json()["access_token"]})
    assert response.status_code == 200
    assert response.json()["active"] is True
    assert_conforms(response, "/introspect", "POST")


async def test_inactive_introspection_conforms(admin: httpx.AsyncClient) -> None:
    """An inactive answer from POST /introspect (a form, a forged token) matches its schema."""
    response = await admin.post("/introspect", data={"oauth_token": "phrat_" + "A" * 59})
    assert response.status_code == 200
    assert response.json() == {"active": False}
    assert_conforms(response, "/introspect", "POST")


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
async def test_probe_conforms(admin: httpx.AsyncClient, path: str) -> None:
    """A probe answers 200 without credentials, matching its declared schema."""
    response = await admin.get(path, headers={"Authorization": ""})
    assert response.status_code == 200
    assert_conforms(response, path, "GET")


# Errors: the one JSON shape, under every status the document declares


async def test_bad_body_error_conforms(admin: httpx.AsyncClient) -> None:
    """A 400 for a body over a declared limit matches the declared error schema."""
    response = await admin.put("/users/u-1", json={**ALICE, "login": "a" * 256})
    assert response.status_code == 400
    assert_conforms(response, "/users/{user_id}", "PUT")


async def test_bad_path_error_conforms(admin: httpx.AsyncClient) -> None:
    """A 400 for a client id outside the declared pattern matches the error schema."""
    response = await admin.get("/clients/bad.id")
    assert response.status_code == 400
    assert_conforms(response, "/clients/{client_id}", "GET")


async def test_bad_limit_error_conforms(admin: httpx.AsyncClient) -> None:
    """A 400 for a limit outside 1..500 matches the declared error schema."""
    response = await admin.get("/clients", params={"limit": "501"})
    assert response.status_code == 400
    assert_conforms(response, "/clients", "GET")


@pytest.mark.parametrize(
    "authorization", [None, "Basic Zm9vOmJhcg==", "Bearer wrong"], ids=["none", "basic", "wrong"]
)
async def test_unauthorized_error_conforms(
    admin: httpx.AsyncClient, authorization: str | None
) -> None:
    """A 401 without a valid admin token carries the declared challenge and error schema."""
    headers = {} if authorization is None else {"Authorization": authorization}
    async with httpx.AsyncClient(
        transport=admin._transport, base_url=admin.base_url, headers=headers
    ) as anonymous:
        response = await anonymous.get("/clients")
    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers
    assert_conforms(response, "/clients", "GET")


async def test_not_found_error_conforms(admin: httpx.AsyncClient) -> None:
    """A 404 for an unknown user matches the declared error schema."""
    response = await admin.get("/users/nobody/grants")
    assert response.status_code == 404
    assert_conforms(response, "/users/{user_id}/grants", "GET")


async def test_unknown_owner_error_conforms(admin: httpx.AsyncClient) -> None:
    """A 404 for registering an app of an unknown owner matches the declared error schema."""
    response = await admin.post("/clients", json={**DESKTOP, "owner_id": "nobody"})
    assert response.status_code == 404
    assert_conforms(response, "/clients", "POST")


async def test_login_conflict_error_conforms(admin: httpx.AsyncClient) -> None:
    """A 409 for a login taken by another user matches the declared error schema."""
    await admin.put("/users/u-1", json=ALICE)
    response = await admin.put("/users/u-2", json=ALICE)
    assert response.status_code == 409
    assert_conforms(response, "/users/{user_id}", "PUT")


async def test_desktop_rotation_error_conforms(
    admin: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    """A 409 for rotating a desktop app's (absent) secret matches the declared error schema."""
    created = await admin.post("/clients", json={**DESKTOP, "owner_id": owner["user_id"]})
    response = await admin.post(f"/clients/{created.json()['client_id']}/secret")
    assert response.status_code == 409
    assert_conforms(response, "/clients/{client_id}/secret", "POST")


async def test_too_large_error_conforms(admin: httpx.AsyncClient) -> None:
    """A 413 for a body over 64 KiB matches the declared error schema."""
    response = await admin.post(
        "/clients", content=b"{" + b" " * 65536 + b"}", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert_conforms(response, "/clients", "POST")


async def test_media_type_error_conforms(
    admin: httpx.AsyncClient, web_client: dict[str, Any]
) -> None:
    """A 415 for a body that is not application/json matches the declared error schema."""
    response = await admin.patch(
        f"/clients/{web_client['client_id']}",
        content=b"name=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 415
    assert_conforms(response, "/clients/{client_id}", "PATCH")


# Hostile input: a declared 4xx in the error shape, never a 5xx


async def test_surrogate_member_name_is_400(admin: httpx.AsyncClient) -> None:
    """An unknown member whose name is a lone surrogate answers the declared 400."""
    response = await admin.put(
        "/users/u-1",
        content=b'{"login": "alice", "\\ud800": 1}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert_conforms(response, "/users/{user_id}", "PUT")


HOSTILE_TEXT = st.one_of(
    st.text(max_size=12),
    st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3),
    st.sampled_from(
        [
            " ",
            "\x00",
            "\u00b2",
            "owner-1",
            "web",
            "desktop",
            "https://a.example/cb",
            "http://127.0.0.1/cb",
            "urn:ietf:wg:oauth:2.0:oob",
            "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
            "a@b.example",
            "OAuth phrat_x",
        ]
    ),
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | HOSTILE_TEXT,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(HOSTILE_TEXT, children, max_size=3)
    ),
    max_leaves=8,
)
INTROSPECTION_MEMBERS = {"token", "oauth_token", "authorization", "token_type_hint"}
MEMBER_NAMES = st.sampled_from(
    sorted({*UPSERT_FIELDS, *CREATE_FIELDS, *UPDATE_FIELDS, *INTROSPECTION_MEMBERS})
)
JSON_BODIES = st.dictionaries(MEMBER_NAMES | HOSTILE_TEXT, JSON_VALUES, max_size=6) | JSON_VALUES
MEDIA_TYPES = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/x-www-form-urlencoded",
        "text/plain",
    ]
)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/users/{user_id}"),
        ("POST", "/clients"),
        ("PATCH", "/clients/{client_id}"),
        ("POST", "/introspect"),
    ],
)
@hypothesis.settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture],
)
@hypothesis.given(body=JSON_BODIES, media_type=MEDIA_TYPES)
async def test_arbitrary_json_bodies_get_declared_answers(
    admin: httpx.AsyncClient,
    web_client: dict[str, Any],
    method: str,
    path: str,
    body: Any,
    media_type: str,
) -> None:
    """Any JSON body (NaN, lone surrogates, unknown members) gets a declared answer, never 5xx."""
    url = path.format(user_id="u-1", client_id=web_client["client_id"])
    response = await admin.request(
        method, url, content=json.dumps(body), headers={"Content-Type": media_type}
    )
    assert_conforms(response, path, method)


# Fuzzing: whatever schemathesis generates from the document, the admin API never answers 5xx
#
# schemathesis's own pytest loaders cannot serve here: ``from_fixture`` breaks on pytest 9 (it
# rewrites ``Function._nodeid``), and its ASGI transport runs the app in a thread of its own.
# Its strategies drive an async Hypothesis test instead, sent through the ``admin`` client to
# the in-process app on this test's event loop and fresh database.

FUZZ_SCHEMA = schemathesis.openapi.from_path(SPEC_PATH)
FUZZ_OPERATIONS: dict[str, Operation] = {
    f"{method} {path}": FUZZ_SCHEMA[path][method] for path, method in sorted(spec_operations())
}
FUZZ_EXAMPLES = 30  # per operation: the whole test stays well under a minute


def fuzz_cases(operation: Operation, known: dict[str, str]) -> st.SearchStrategy[AnyCase]:
    """Valid and invalid requests, with random path parameters and with ones that exist."""
    fixed = {name: known[name] for name in re.findall(r"\{(\w+)\}", operation.path)}
    strategies: list[st.SearchStrategy[AnyCase]] = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        strategies.append(operation.as_strategy(generation_mode=mode))
        if fixed:
            strategies.append(operation.as_strategy(generation_mode=mode, path_parameters=fixed))
    return st.one_of(strategies)


async def send(client: httpx.AsyncClient, case: AnyCase) -> httpx.Response:
    """Send ``case`` as schemathesis serialized it, with the admin token."""
    kwargs = case.as_transport_kwargs(
        base_url=str(client.base_url), headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    headers = [
        (name.encode("latin-1"), value.encode("latin-1"))
        for name, value in kwargs["headers"].items()
    ]
    if kwargs.get("cookies"):
        cookie = "; ".join(f"{name}={value}" for name, value in kwargs["cookies"].items())
        headers.append((b"cookie", cookie.encode("latin-1")))
    body: dict[str, Any] = {}
    if "json" in kwargs:
        body["json"] = kwargs["json"]
    elif isinstance(kwargs.get("data"), bytes | str):
        body["content"] = kwargs["data"]
    elif kwargs.get("data") is not None:
        body["data"] = kwargs["data"]
    return await client.request(
        kwargs["method"], kwargs["url"], params=kwargs.get("params"), headers=headers, **body
    )


@pytest.mark.parametrize("label", sorted(FUZZ_OPERATIONS))
@hypothesis.settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture],
)
@hypothesis.given(data=st.data())
async def test_no_server_errors(
    admin: httpx.AsyncClient,
    owner: dict[str, Any],
    web_client: dict[str, Any],
    label: str,
    data: st.DataObject,
) -> None:
    """No request generated from the document, valid or not, makes the admin API answer 5xx."""
    known = {"user_id": owner["user_id"], "client_id": web_client["client_id"]}
    case = data.draw(fuzz_cases(FUZZ_OPERATIONS[label], known), label="case")
    response = await send(admin, case)
    hypothesis.event("status", response.status_code)
    case.validate_response(response, checks=[not_a_server_error])
