"""Migrate and seed DOT's tables as bench.seed seeds authserver's, and write what the loads
need (client credentials, live tokens) as JSON to the file named on the command line.

``python -m dotpeer.seed OUT.json TOKENS`` in the throwaway virtual environment.
"""

from __future__ import annotations

import json
import random
import secrets
import sys
from datetime import timedelta
from pathlib import Path

import django

USERS = 1_000
WEB_CLIENTS = 50


def main() -> None:
    out, count = Path(sys.argv[1]), int(sys.argv[2])
    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.utils import timezone
    from oauth2_provider.models import AccessToken, Application

    call_command("migrate", verbosity=0)
    users = get_user_model().objects.bulk_create(
        [get_user_model()(username=f"bench{i}") for i in range(1, USERS + 1)]
    )

    def client(client_id: str) -> dict[str, str]:
        secret = secrets.token_urlsafe(32)
        # Plaintext secrets (hash_client_secret=False): authserver compares a keyed digest,
        # DOT's default would run PBKDF2 on every request.
        Application.objects.create(
            client_id=client_id,
            client_secret=secret,
            hash_client_secret=False,
            client_type=Application.CLIENT_CONFIDENTIAL,
            authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
            name=client_id,
        )
        return {"client_id": client_id, "secret": secret}

    web = [client(f"bench-web-{i}") for i in range(1, WEB_CLIENTS + 1)]
    introspector = client("bench-introspector")
    apps = {app.client_id: app for app in Application.objects.all()}
    rng = random.Random(20240601)  # noqa: S311 -- which user owns a token, not a secret
    expires = timezone.now() + timedelta(days=1)
    tokens = [secrets.token_urlsafe(32) for _ in range(count)]
    # Four in five a user's, one in five a client's own, as authserver's seeded tokens.
    AccessToken.objects.bulk_create(
        AccessToken(
            token=token,
            user=rng.choice(users) if i % 5 else None,
            application=apps[rng.choice(web)["client_id"]],
            expires=expires,
            scope="read write",
        )
        for i, token in enumerate(tokens)
    )
    out.write_text(json.dumps({"introspector": introspector, "clients": web, "tokens": tokens}))


if __name__ == "__main__":
    main()
