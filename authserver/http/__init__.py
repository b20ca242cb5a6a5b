"""The HTTP edge: raw ASGI endpoints, the pages, the admin API, bodies, errors and observation.

Everything here turns HTTP into calls on the protocol core (authserver.oauth) and the domain
modules, and their answers and exceptions back into HTTP; none of the rules live here.
"""
