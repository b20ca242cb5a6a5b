"""The admin API's routes: users, their grants, and applications.

Each handler decodes, calls the domain module that owns the operation, and encodes; the rules
live in ``authserver.users`` and ``authserver.clients``, shared with the CLI.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from authserver import clients, users
from authserver.admin.http import (
    form_or_json_body,
    json_body,
    ok,
    query,
    resources,
    token_from_platform,
)
from authserver.errors import InvalidInput
from authserver.oauth import introspection
from authserver.serialize import client_json, grant_json, user_json


async def put_user(request: Request) -> JSONResponse:
    user, created = await users.upsert_user(
        resources(request), request.path_params["user_id"], await json_body(request)
    )
    return ok(user_json(user), 201 if created else 200)


async def get_user(request: Request) -> JSONResponse:
    query(request, ())
    return ok(user_json(await users.get_user(resources(request), request.path_params["user_id"])))


async def delete_user(request: Request) -> Response:
    await users.delete_user(resources(request), request.path_params["user_id"])
    return Response(status_code=204)


async def list_grants(request: Request) -> JSONResponse:
    query(request, ())
    apps = await users.list_grants(resources(request), request.path_params["user_id"])
    return ok({"grants": [grant_json(app) for app in apps]})


async def revoke_grant(request: Request) -> Response:
    await users.revoke_grant(
        resources(request), request.path_params["user_id"], request.path_params["client_id"]
    )
    return Response(status_code=204)


async def create_client(request: Request) -> JSONResponse:
    registered = await clients.create_client(resources(request), await json_body(request))
    body = client_json(registered.client)
    body["client_secret"] = registered.client_secret
    return ok(body, 201)


async def list_clients(request: Request) -> JSONResponse:
    params = query(request, ("owner_id", "after", "limit"))
    limit = params.get("limit", "100")
    if not (limit.isascii() and limit.isdigit()) or len(limit) > 4:
        raise InvalidInput("limit must be a whole number")
    found = await clients.list_clients(
        resources(request), params.get("owner_id"), params.get("after", ""), int(limit)
    )
    body: dict[str, object] = {"clients": [client_json(client) for client in found]}
    if len(found) == int(limit):
        body["next_after"] = found[-1].client_id
    return ok(body)


async def get_client(request: Request) -> JSONResponse:
    query(request, ())
    client = await clients.get_client(resources(request), request.path_params["client_id"])
    return ok(client_json(client))


async def update_client(request: Request) -> JSONResponse:
    client = await clients.update_client(
        resources(request), request.path_params["client_id"], await json_body(request)
    )
    return ok(client_json(client))


async def delete_client(request: Request) -> Response:
    await clients.delete_client(resources(request), request.path_params["client_id"])
    return Response(status_code=204)


async def rotate_secret(request: Request) -> JSONResponse:
    rotated = await clients.rotate_secret(resources(request), request.path_params["client_id"])
    return ok(
        {
            "client_id": rotated.client_id,
            "client_secret": rotated.client_secret,
            "previous_secret_valid_for": rotated.previous_valid_for,
        },
        201,
    )


async def developer_token(request: Request) -> JSONResponse:
    issued = await clients.issue_developer_token(
        resources(request), request.path_params["client_id"]
    )
    return ok(
        {
            "client_id": issued.client_id,
            "access_token": issued.access_token,
            "token_type": "Bearer",
            "scope": issued.scope,
        },
        201,
    )


async def introspect(request: Request) -> JSONResponse:
    """RFC 7662 for the platform: the token as a resource server received it."""
    res = resources(request)
    token = token_from_platform(await form_or_json_body(request))
    answer = await introspection.introspect(res, token)
    res.metrics.introspected(bool(answer["active"]))
    return ok(answer)


ROUTES = [
    Route("/users/{user_id}", put_user, methods=["PUT"]),
    Route("/users/{user_id}", get_user, methods=["GET"]),
    Route("/users/{user_id}", delete_user, methods=["DELETE"]),
    Route("/users/{user_id}/grants", list_grants, methods=["GET"]),
    Route("/users/{user_id}/grants/{client_id}", revoke_grant, methods=["DELETE"]),
    Route("/clients", create_client, methods=["POST"]),
    Route("/clients", list_clients, methods=["GET"]),
    Route("/clients/{client_id}", get_client, methods=["GET"]),
    Route("/clients/{client_id}", update_client, methods=["PATCH"]),
    Route("/clients/{client_id}", delete_client, methods=["DELETE"]),
    Route("/clients/{client_id}/secret", rotate_secret, methods=["POST"]),
    Route("/clients/{client_id}/developer-token", developer_token, methods=["POST"]),
    Route("/introspect", introspect, methods=["POST"]),
]
