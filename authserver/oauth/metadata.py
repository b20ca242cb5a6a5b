"""RFC 8414 authorization server metadata, which is also OpenID Connect Discovery 1.0 §3's
provider metadata: what is enforced, and nothing more."""

from __future__ import annotations

from typing import Any

from authserver import scopes
from authserver.oauth.device import DEVICE_GRANT
from authserver.oauth.endpoints import GRANT_TYPES
from authserver.oidc.claims import CLAIMS_SUPPORTED
from authserver.oidc.keys import ALGORITHMS


def metadata(issuer: str, *, device_grant: bool = False) -> dict[str, Any]:
    """The document; ``device_grant`` when some application may use RFC 8628's grant."""
    document = _metadata(issuer)
    if device_grant:
        # RFC 8628 §4: the endpoint, and the grant among the token endpoint's.
        document["device_authorization_endpoint"] = f"{issuer}/oauth2/device_authorization"
        document["grant_types_supported"].append(DEVICE_GRANT)
    return document


def _metadata(issuer: str) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth2/authorize",
        "token_endpoint": f"{issuer}/oauth2/token",
        "revocation_endpoint": f"{issuer}/oauth2/revoke",
        "introspection_endpoint": f"{issuer}/oauth2/introspect",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": list(GRANT_TYPES),
        "scopes_supported": list(scopes.SCOPES),
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        # Only confidential clients allowed to introspect (RFC 7662 §2.1).
        "introspection_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
        ],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
        # OpenID Connect Discovery 1.0 §3
        "userinfo_endpoint": f"{issuer}/oauth2/userinfo",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "end_session_endpoint": f"{issuer}/oauth2/logout",
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": list(ALGORITHMS),
        "claims_supported": list(CLAIMS_SUPPORTED),
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "prompt_values_supported": ["none", "login", "consent"],
    }
