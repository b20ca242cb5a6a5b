"""The public OAuth routes: token, revocation, introspection, metadata."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from authserver.oauth import bridge
from authserver.oauth.metadata import metadata
from authserver.resources import Resources


def _res(request: Request) -> Resources:
    res: Resources = request.state.res
    return res


async def token(request: Request) -> Response:
    return await bridge.handle(_res(request), request, "token")


async def revoke(request: Request) -> Response:
    return await bridge.handle(_res(request), request, "revoke")


async def introspect(request: Request) -> Response:
    return await bridge.handle(_res(request), request, "introspect")


async def server_metadata(request: Request) -> Response:
    return JSONResponse(
        metadata(_res(request).settings.issuer),
        headers={"Cache-Control": "public, max-age=3600", "Access-Control-Allow-Origin": "*"},
    )


ROUTES = [
    Route("/oauth2/token", token, methods=["POST"]),
    Route("/api/oauthv2/token", token, methods=["POST"]),  # Phraseanet's path for old clients
    Route("/oauth2/revoke", revoke, methods=["POST"]),
    Route("/oauth2/introspect", introspect, methods=["POST"]),
    Route("/.well-known/oauth-authorization-server", server_metadata, methods=["GET"]),
]
