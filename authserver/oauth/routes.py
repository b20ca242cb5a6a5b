"""The public OAuth routes served by Starlette: the metadata document.

Token, revocation and introspection are raw ASGI, in front of Starlette (authserver.oauth.asgi).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from authserver.oauth.metadata import metadata
from authserver.resources import Resources


async def server_metadata(request: Request) -> Response:
    res: Resources = request.state.res
    return JSONResponse(
        metadata(res.settings.issuer),
        headers={"Cache-Control": "public, max-age=3600", "Access-Control-Allow-Origin": "*"},
    )


ROUTES = [
    Route("/.well-known/oauth-authorization-server", server_metadata, methods=["GET"]),
]
