"""Reading the audit trail, as operators do through the admin API (``GET /audit``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime

from authserver.db.store import Store
from authserver.errors import InvalidInput
from authserver.models import AuditEvent
from authserver.validation import check_client_id, check_user_id

MAX_PAGE = 500
FILTERS = ("user_id", "client_id", "kind", "since", "until", "before", "limit")
_KIND = re.compile(r"[a-z_.]{1,64}")


class AuditTrail:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def page(self, query: Mapping[str, str]) -> list[AuditEvent]:
        """One page of events, newest first, by the filters in ``query`` (all optional)."""
        user_id, client_id = query.get("user_id"), query.get("client_id")
        if user_id is not None:
            check_user_id(user_id)
        if client_id is not None:
            check_client_id(client_id)
        kind = query.get("kind")
        if kind is not None and not _KIND.fullmatch(kind):
            raise InvalidInput("kind is an event kind such as token.issued")
        return await self._store.audit.page(
            user_id=user_id,
            client_id=client_id,
            kind=kind,
            since=_instant(query, "since"),
            until=_instant(query, "until"),
            before=_whole(query, "before", 1, 2**62),
            limit=_whole(query, "limit", 1, MAX_PAGE) or 100,
        )


def _instant(query: Mapping[str, str], name: str) -> datetime | None:
    value = query.get(name)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{name} must be an ISO 8601 date and time") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _whole(query: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    value = query.get(name)
    if value is None:
        return None
    if (
        not (value.isascii() and value.isdigit())
        or len(value) > 19
        or not low <= int(value) <= high
    ):
        raise InvalidInput(f"{name} must be a whole number between {low} and {high}")
    return int(value)
