"""The service's own exceptions, raised by the domain and translated at the HTTP and CLI edges.

    AuthserverError
     ├── InvalidInput   a request field is missing, of the wrong type or out of bounds (400)
     ├── NotFound       the named user, client or grant does not exist (404)
     └── Conflict       the change would break a rule of the stored state (409)

Messages are written for the caller and never contain secrets or submitted values.
"""

from __future__ import annotations


class AuthserverError(Exception):
    """Base class; ``code`` is the JSON ``error`` the admin API answers with."""

    code = "server_error"
    status = 500

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class InvalidInput(AuthserverError):
    code = "invalid_request"
    status = 400


class NotFound(AuthserverError):
    code = "not_found"
    status = 404


class Conflict(AuthserverError):
    code = "conflict"
    status = 409
