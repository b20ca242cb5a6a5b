"""Taking over a live Phraseanet: its appbox's users, applications, grants and tokens, imported
into authserver so that every client, grant, token and password keeps working
(docs/phraseanet.md; the rules are the decisions D1 to D17 of the reference it cites).

- ``source``: the appbox URL and the rows read from MySQL (PyMySQL, the optional extra);
- ``mapping``: the rules, as pure functions from source rows to what authserver stores;
- ``report``: what was imported, skipped or changed, and why;
- ``writer``: batches into PostgreSQL, argon2 wrapping on every core, resumable;
- ``importer``: the run, stage by stage, with its progress on a terminal.
"""
