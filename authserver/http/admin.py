"""The admin API's routes: users, their grants, applications, and introspection for the platform.

Each handler decodes, calls the domain module that owns the operation, and encodes; the rules
live in ``authserver.users`` and ``authserver.clients``, shared with the CLI.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from authserver.audit import FILTERS, AuditTrail
from authserver.clients import Clients
from authserver.errors import InvalidInput
from authserver.http.admin_io import form_or_json_body, json_body, ok, query, token_from_platform
from authserver.oauth.introspection import Introspector
from authserver.oidc.keys import KeyLifecycle
from authserver.serialize import audit_json, client_json, grant_json, user_json
from authserver.users import Users


class AdminApi:
    def __init__(
        self,
        users: Users,
        clients: Clients,
        audit: AuditTrail,
        introspector: Introspector,
        on_introspected: Callable[[bool], None],
        keys: KeyLifecycle,
    ) -> None:
        self._users = users
        self._clients = clients
        self._audit = audit
        self._introspector = introspector
        self._on_introspected = on_introspected
        self._keys = keys

    async def put_user(self, request: Request) -> JSONResponse:
        user, created = await self._users.upsert(
            request.path_params["user_id"], await json_body(request)
        )
        return ok(user_json(user), 201 if created else 200)

    async def get_user(self, request: Request) -> JSONResponse:
        query(request, ())
        return ok(user_json(await self._users.get(request.path_params["user_id"])))

    async def delete_user(self, request: Request) -> Response:
        await self._users.delete(request.path_params["user_id"])
        return Response(status_code=204)

    async def list_grants(self, request: Request) -> JSONResponse:
        query(request, ())
        apps = await self._users.grants(request.path_params["user_id"])
        return ok({"grants": [grant_json(app) for app in apps]})

    async def revoke_grant(self, request: Request) -> Response:
        await self._users.revoke_grant(
            request.path_params["user_id"], request.path_params["client_id"]
        )
        return Response(status_code=204)

    async def create_client(self, request: Request) -> JSONResponse:
        registered = await self._clients.create(await json_body(request))
        body = client_json(registered.client)
        body["client_secret"] = registered.client_secret
        return ok(body, 201)

    async def list_clients(self, request: Request) -> JSONResponse:
        params = query(request, ("owner_id", "after", "limit"))
        limit = params.get("limit", "100")
        if not (limit.isascii() and limit.isdigit()) or len(limit) > 4:
            raise InvalidInput("limit must be a whole number")
        found = await self._clients.page(
            params.get("owner_id"), params.get("after", ""), int(limit)
        )
        body: dict[str, object] = {"clients": [client_json(client) for client in found]}
        if len(found) == int(limit):
            body["next_after"] = found[-1].client_id
        return ok(body)

    async def get_client(self, request: Request) -> JSONResponse:
        query(request, ())
        return ok(client_json(await self._clients.get(request.path_params["client_id"])))

    async def update_client(self, request: Request) -> JSONResponse:
        client = await self._clients.update(
            request.path_params["client_id"], await json_body(request)
        )
        return ok(client_json(client))

    async def delete_client(self, request: Request) -> Response:
        await self._clients.delete(request.path_params["client_id"])
        return Response(status_code=204)

    async def rotate_secret(self, request: Request) -> JSONResponse:
        rotated = await self._clients.rotate_secret(request.path_params["client_id"])
        return ok(
            {
                "client_id": rotated.client_id,
                "client_secret": rotated.client_secret,
                "previous_secret_valid_for": rotated.previous_valid_for,
            },
            201,
        )

    async def developer_token(self, request: Request) -> JSONResponse:
        issued = await self._clients.issue_developer_token(request.path_params["client_id"])
        return ok(
            {
                "client_id": issued.client_id,
                "access_token": issued.access_token,
                "token_type": "Bearer",
                "scope": issued.scope,
            },
            201,
        )

    async def list_audit(self, request: Request) -> JSONResponse:
        """Audit events, newest first; ``next_before`` continues a full page."""
        params = query(request, FILTERS)
        events = await self._audit.page(params)
        body: dict[str, object] = {"events": [audit_json(event) for event in events]}
        if events and len(events) == int(params.get("limit", "100")):
            body["next_before"] = events[-1].event_id
        return ok(body)

    async def introspect(self, request: Request) -> JSONResponse:
        """RFC 7662 for the platform: the token as a resource server received it."""
        token = token_from_platform(await form_or_json_body(request))
        answer = await self._introspector.introspect(token)
        self._on_introspected(bool(answer["active"]))
        return ok(answer)

    async def list_keys(self, request: Request) -> JSONResponse:
        """The ID token signing keys this replica knows (public facts only)."""
        query(request, ())
        return ok({"keys": list(self._keys.keys.describe())})

    async def rotate_keys(self, request: Request) -> JSONResponse:
        """New signing keys, published now and signing once every replica has them."""
        query(request, ())
        made = await self._keys.rotate()
        return ok({"rotated": made, "keys": list(self._keys.keys.describe())}, 201)

    # The admin API's route table (path, method, handler), as openapi/admin.yaml describes it.
    ROUTES: ClassVar[tuple[tuple[str, str, str], ...]] = (
        ("/users/{user_id}", "PUT", "put_user"),
        ("/users/{user_id}", "GET", "get_user"),
        ("/users/{user_id}", "DELETE", "delete_user"),
        ("/users/{user_id}/grants", "GET", "list_grants"),
        ("/users/{user_id}/grants/{client_id}", "DELETE", "revoke_grant"),
        ("/clients", "POST", "create_client"),
        ("/clients", "GET", "list_clients"),
        ("/clients/{client_id}", "GET", "get_client"),
        ("/clients/{client_id}", "PATCH", "update_client"),
        ("/clients/{client_id}", "DELETE", "delete_client"),
        ("/clients/{client_id}/secret", "POST", "rotate_secret"),
        ("/clients/{client_id}/developer-token", "POST", "developer_token"),
        ("/introspect", "POST", "introspect"),
        ("/audit", "GET", "list_audit"),
        ("/keys", "GET", "list_keys"),
        ("/keys/rotate", "POST", "rotate_keys"),
    )

    def routes(self) -> list[Route]:
        return [
            Route(path, getattr(self, handler), methods=[method])
            for path, method, handler in self.ROUTES
        ]
