"""What an import did: per source table, rows read, imported and skipped, and every row skipped or
changed with its reason and the decision (D1 to D17 of docs/phraseanet.md) behind it.

The same report comes out of a dry run and of a real one, and of a run resumed after an
interruption (the rules are applied to every source row each time; only writing resumes).
Nothing secret is ever part of it: no password, hash, secret, token or URL password.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from authserver.errors import ImportFailed

TABLES = ("Users", "ApiApplications", "ApiAccounts", "ApiOauthTokens")
Action = Literal["skipped", "changed"]


@dataclass(frozen=True)
class Finding:
    table: str
    key: str  # the source row's id (a token: the account id and the token's first characters)
    action: Action
    decision: str  # "D1" … "D17"
    reason: str

    def json(self) -> dict[str, str]:
        return {
            "table": self.table,
            "id": self.key,
            "action": self.action,
            "decision": self.decision,
            "reason": self.reason,
        }


@dataclass
class Report:
    source: str  # the appbox URL without its password
    dry_run: bool
    site_key: bool  # whether AUTHSERVER_PHRASEANET_SITE_KEY was set
    read: Counter[str] = field(default_factory=Counter)
    imported: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    not_imported: dict[str, int] = field(default_factory=dict)  # codes, refresh tokens, logs

    def take(self, table: str) -> None:
        self.read[table] += 1
        self.imported[table] += 1

    def skip(self, table: str, key: object, decision: str, reason: str) -> None:
        self.read[table] += 1
        self.skipped[table] += 1
        self.findings.append(Finding(table, str(key), "skipped", decision, reason))

    def change(self, table: str, key: object, decision: str, reason: str) -> None:
        """An imported row that differs from its source, or that needs an operator's eye."""
        self.findings.append(Finding(table, str(key), "changed", decision, reason))

    def decisions(self) -> Counter[tuple[str, str, str]]:
        """How many rows each (table, action, decision) concerns."""
        return Counter((f.table, f.action, f.decision) for f in self.findings)

    def json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "dry_run": self.dry_run,
            "site_key": self.site_key,
            "tables": {
                table: {
                    "read": self.read[table],
                    "imported": self.imported[table],
                    "skipped": self.skipped[table],
                }
                for table in TABLES
            },
            "not_imported": self.not_imported,
            "rows": [finding.json() for finding in self.findings],
        }

    def summary(self) -> list[str]:
        """The report for a terminal: the counts, and how many rows each decision touched."""
        lines = [
            f"import from {self.source}{' (dry run: nothing written)' if self.dry_run else ''}"
        ]
        for table in TABLES:
            lines.append(
                f"  {table:<16} read {self.read[table]:>9,}  imported {self.imported[table]:>9,}"
                f"  skipped {self.skipped[table]:>9,}"
            )
        for name, count in self.not_imported.items():
            lines.append(f"  {name:<16} read {count:>9,}  not imported (by design)")
        for (table, action, decision), count in sorted(self.decisions().items()):
            lines.append(f"  {decision:<4} {table:<16} {action:<8} {count:>9,}")
        if not self.site_key:
            lines.append(
                "  without AUTHSERVER_PHRASEANET_SITE_KEY, users with HMAC hashes cannot sign in"
                " (D1 rows of the report)"
            )
        return lines

    def write(self, path: Path) -> None:
        """Write the JSON report whole or not at all."""
        partial = path.with_name(path.name + ".partial")
        try:
            partial.write_text(json.dumps(self.json(), indent=1) + "\n", encoding="utf-8")
            os.replace(partial, path)
        except OSError as exc:
            raise ImportFailed(f"cannot write the report: {exc.strerror or 'error'}") from None
