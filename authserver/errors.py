"""The service's exceptions: one tree, raised where a rule is broken and translated once, at the
HTTP edge (an answer) or in the CLI (a line and an exit status).

    AuthServerError                  description: safe to show; error and status: how to answer
     ├── ConfigError                 a setting is missing or malformed (exit status 2)
     │    └── Malformed              a parser's complaint about a value, before it names the setting
     ├── MigrationError              the database's migrations are not this version's
     ├── ImportFailed                the Phraseanet import cannot go on (appbox, URL, report)
     ├── Unavailable                 503 temporarily_unavailable, retry after ``retry_after`` s
     │    ├── DatabaseUnavailable    PostgreSQL is unreachable, frozen, read-only or overloaded
     │    └── Overloaded             work shed before it was queued (argon2, connections)
     ├── ProtocolError               an OAuth error (RFC 6749 §5.2 and the RFCs extending it)
     │    ├── InvalidRequest         400 invalid_request
     │    ├── InvalidClient          401 invalid_client
     │    ├── InvalidGrant           400 invalid_grant
     │    ├── TooManyAttempts        429, retry after ``retry_after`` s (brute force, guessing)
     │    └── ErrorPage              the authorization endpoint cannot answer the client: a page
     └── AdminError                  the admin API and the CLI
          ├── InvalidInput           400 invalid_request: a field missing, mistyped or too big
          ├── NotFound               404: the named user, client or grant does not exist
          └── Conflict               409: the change would break a rule of the stored state

Descriptions are written for the caller and never contain secrets or submitted values.
"""

from __future__ import annotations


class AuthServerError(Exception):
    """Base class: ``error`` is the RFC 6749-style code an answer carries, ``status`` its HTTP
    status, and ``description`` a sentence safe to show to whoever sent the request."""

    error = "server_error"
    status = 500

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class ConfigError(AuthServerError):
    """A setting is missing or malformed; the description names the variable and says why."""


class Malformed(ConfigError):
    """A parser's complaint about a value: says what was expected, never the value."""


class MigrationError(AuthServerError):
    """The database holds migrations that do not match the ones shipped with this version."""


class ImportFailed(AuthServerError):
    """The Phraseanet import cannot go on: the appbox URL is wrong, the appbox cannot be read,
    the report cannot be written. Never quotes the URL's password or a driver's message."""


class Unavailable(AuthServerError):
    """The request could not be served now and may succeed later (RFC 9110 §15.6.4)."""

    error = "temporarily_unavailable"
    status = 503

    def __init__(self, description: str, retry_after: int = 1) -> None:
        super().__init__(description)
        self.retry_after = retry_after


class DatabaseUnavailable(Unavailable):
    """PostgreSQL could not answer in time: down, frozen, read-only, or out of connections."""


class Overloaded(Unavailable):
    """More work is queued than can be done before the caller gives up: shed, not queued."""


class ProtocolError(AuthServerError):
    """An OAuth error answer: ``error`` and ``status`` as the RFCs define them."""

    error = "invalid_request"
    status = 400


class InvalidRequest(ProtocolError):
    """RFC 6749 §5.2: malformed, repeated or missing parameters."""


class InvalidClient(ProtocolError):
    """RFC 6749 §5.2: client authentication failed before any client was looked up."""

    error = "invalid_client"
    status = 401


class InvalidGrant(ProtocolError):
    """RFC 6749 §5.2: the code or refresh token is not (or no longer) good."""

    error = "invalid_grant"


class TooManyAttempts(ProtocolError):
    """Too many failures from this caller: paused for ``retry_after`` seconds (RFC 6749
    §2.3.1, §10.10; RFC 6585 §4)."""

    status = 429

    def __init__(self, error: str, description: str, retry_after: int) -> None:
        super().__init__(description)
        self.error = error
        self.retry_after = retry_after


class ErrorPage(ProtocolError):
    """The authorization request cannot be answered at the client (RFC 6749 §4.1.2.1): the
    user sees a page instead, and nothing is redirected."""


class AdminError(AuthServerError):
    """An error of the admin API or the CLI."""


class InvalidInput(AdminError):
    error = "invalid_request"
    status = 400


class NotFound(AdminError):
    error = "not_found"
    status = 404


class Conflict(AdminError):
    error = "conflict"
    status = 409
