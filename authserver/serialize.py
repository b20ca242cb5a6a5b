"""The JSON shape of users, clients and grants, shared by the admin API and the CLI.

Nothing secret is ever part of these shapes: password hashes and secret digests stay inside.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from authserver.models import AuditEvent, AuthorizedApp, Client, User


def _time(value: datetime) -> str:
    return value.isoformat()


def user_json(user: User) -> dict[str, Any]:
    return {
        "user_id": user.user_id,
        "login": user.login,
        "email": user.email,
        "email_verified": user.email_verified,
        "display_name": user.display_name,
        "has_password": user.password_hash is not None,
        "created_at": _time(user.created_at),
        "updated_at": _time(user.updated_at),
    }


def client_json(client: Client) -> dict[str, Any]:
    return {
        "client_id": client.client_id,
        "name": client.name,
        "description": client.description,
        "website": client.website,
        "type": client.client_type,
        "redirect_uris": list(client.redirect_uris),
        "owner_id": client.owner_id,
        "password_grant": client.password_grant,
        "introspection": client.introspection,
        "active": client.active,
        "require_pkce": client.require_pkce,
        "id_token_signed_response_alg": client.id_token_signed_response_alg,
        "post_logout_redirect_uris": list(client.post_logout_redirect_uris),
        "token_exchange": client.token_exchange,
        "resource_server": client.resource_server,
        "device_grant": client.device_grant,
        "token_endpoint_auth_method": "none" if client.is_public else "client_secret_basic",
        "created_at": _time(client.created_at),
        "updated_at": _time(client.updated_at),
    }


def grant_json(app: AuthorizedApp) -> dict[str, Any]:
    return {
        "client_id": app.client_id,
        "name": app.name,
        "description": app.description,
        "website": app.website,
        "owner_id": app.owner_id,
        "scopes": list(app.scopes),
        "created_at": _time(app.created_at),
        "updated_at": _time(app.updated_at),
    }


def audit_json(event: AuditEvent) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "occurred_at": _time(event.occurred_at),
        "kind": event.kind,
        "client_id": event.client_id,
        "user_id": event.user_id,
        "detail": json.loads(event.detail),
    }
