-- name: issue_tokens
-- Store the tokens of one or more issues (one array element per token, $1 to $12, the fields of
-- authserver.db.rows.TokenInsert in order; a NULL lifetime never expires, and none outlives its
-- not_after) and one token.issued event per issue ($13 to $15, the fields of AuditInsert) in
-- one statement: atomic without a transaction, and one round trip. A data-modifying WITH runs
-- once and to completion whatever the outer statement reads.
WITH issued AS (
    INSERT INTO tokens (digest, kind, client_id, user_id, grant_id, family_id, code_digest, scope,
                        developer, expires_at, auth_time)
    SELECT t.digest, t.kind, t.client_id, t.user_id, t.grant_id, t.family_id, t.code_digest,
           t.scope, t.developer, least(now() + make_interval(secs => t.expires_in), t.not_after),
           t.auth_time
    FROM unnest($1::bytea[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::uuid[],
                $7::bytea[], $8::text[], $9::double precision[], $10::boolean[],
                $11::timestamptz[], $12::timestamptz[])
         AS t(digest, kind, client_id, user_id, grant_id, family_id, code_digest, scope,
              expires_in, developer, not_after, auth_time)
)
INSERT INTO audit_events (kind, client_id, user_id, detail)
SELECT 'token.issued', a.client_id, a.user_id, a.detail::jsonb
FROM unnest($13::text[], $14::text[], $15::text[]) AS a(client_id, user_id, detail);

-- name: issue_client_tokens
-- issue_tokens for issues that are a client's own (client credentials: no user, grant, family,
-- code, sign-in or cap; one expiring access token each), with only the arrays they fill ($1 to
-- $5, the fields of authserver.db.rows.ClientTokenInsert; $6 and $7 those of ClientAuditInsert):
-- the seven unused arrays of NULLs cost asyncpg's encoding and PostgreSQL's unnest on the
-- busiest write (bench/README.md, step 12).
WITH issued AS (
    INSERT INTO tokens (digest, kind, client_id, scope, expires_at)
    SELECT c.digest, c.kind, c.client_id, c.scope, now() + make_interval(secs => c.expires_in)
    FROM unnest($1::bytea[], $2::text[], $3::text[], $4::text[], $5::double precision[])
         AS c(digest, kind, client_id, scope, expires_in)
)
INSERT INTO audit_events (kind, client_id, detail)
SELECT 'token.issued', e.client_id, e.detail::jsonb
FROM unnest($6::text[], $7::text[]) AS e(client_id, detail);

-- name: tokens_by_digests
-- Tokens by digest, with what introspection answers and what the refresh grant checks;
-- the lookups in flight together go as one query (authserver.db.batches).
SELECT * FROM token_status WHERE digest = ANY($1::bytea[]);

-- name: legacy_tokens_by_digests
-- Tokens imported from Phraseanet by digest, among those rows only (D9): a value that merely
-- has their shape never reaches any other token (authserver.db.batches).
SELECT * FROM token_status WHERE digest = ANY($1::bytea[]) AND legacy;

-- name: any_legacy_token
-- Whether any token imported from Phraseanet is left (the partial index answers at once).
SELECT EXISTS (SELECT 1 FROM tokens WHERE legacy);

-- name: claim_refresh_token
-- Rotate a refresh token out; no row back means another request already used it.
UPDATE tokens SET consumed_at = now()
WHERE digest = $1 AND kind = 'refresh' AND consumed_at IS NULL AND revoked_at IS NULL
  AND expires_at > now()
RETURNING family_id;

-- name: revoke_family
-- Revoke every token descended from one authorization (refresh reuse, RFC 7009).
-- Rows are locked in one order, the presented refresh token ($2) first: the revocation of a
-- refresh token holds it while it revokes the family, and so do racing reuses of it, so they
-- queue on it instead of each locking part of the family and deadlocking, which PostgreSQL
-- breaks only after deadlock_timeout (a second each, long enough to reach lock_timeout).
WITH doomed AS MATERIALIZED (
    SELECT digest FROM tokens
    WHERE family_id = $1 AND revoked_at IS NULL
    ORDER BY digest <> $2, digest
    FOR UPDATE
)
UPDATE tokens SET revoked_at = now()
FROM doomed WHERE tokens.digest = doomed.digest;

-- name: revoke_code_families
-- Revoke what a replayed code issued, and everything refreshed from it since; rows locked in
-- one order, as above.
WITH doomed AS MATERIALIZED (
    SELECT digest FROM tokens
    WHERE family_id IN (
        SELECT family_id FROM tokens WHERE code_digest = $1 AND family_id IS NOT NULL
    ) AND revoked_at IS NULL
    ORDER BY digest
    FOR UPDATE
)
UPDATE tokens SET revoked_at = now()
FROM doomed WHERE tokens.digest = doomed.digest;

-- name: revoke_token
-- Revoke one token of one client (RFC 7009 §2.1: a client revokes only its own tokens).
UPDATE tokens SET revoked_at = now()
WHERE digest = $1 AND client_id = $2 AND revoked_at IS NULL
RETURNING kind, family_id;

-- name: delete_developer_tokens
-- Kill the developer tokens of a grant, before issuing the one that replaces them.
DELETE FROM tokens WHERE grant_id = $1 AND developer;

-- name: revoke_user_tokens
-- Revoke every live token of a user (a password change or reset); how many.
WITH revoked AS (
    UPDATE tokens SET revoked_at = now()
    WHERE user_id = $1 AND revoked_at IS NULL
    RETURNING 1
)
SELECT count(*) FROM revoked;

-- name: revoke_client_tokens
-- Revoke every live token of a client (it was disabled); how many.
WITH revoked AS (
    UPDATE tokens SET revoked_at = now()
    WHERE client_id = $1 AND revoked_at IS NULL
    RETURNING 1
)
SELECT count(*) FROM revoked;

-- name: issue_exchanged_token
-- Token exchange (RFC 8693): store the new access token ($1 digest, $3 acting client, $4 user,
-- $5 grant, $6 scope, $7 lifetime in seconds, $8 audience, $9 actors) and its token.issued
-- event ($10 detail), only while the subject token ($2) is live, and never past its expiry. FOR
-- SHARE: a revocation of the subject either finished first (then nothing is issued) or waits
-- for this one, and then its trigger revokes what this issued. No row back: nothing issued.
WITH subject AS (
    SELECT digest, expires_at FROM tokens
    WHERE digest = $2 AND kind = 'access' AND revoked_at IS NULL
      AND (expires_at IS NULL OR expires_at > now())
    FOR SHARE
), issued AS (
    INSERT INTO tokens (digest, kind, client_id, user_id, grant_id, scope, expires_at, audience,
                        actors, subject_digest)
    SELECT $1, 'access', $3, $4, $5, $6,
           least(now() + make_interval(secs => $7::double precision), s.expires_at), $8, $9,
           s.digest
    FROM subject s
    RETURNING client_id, user_id
)
INSERT INTO audit_events (kind, client_id, user_id, detail)
SELECT 'token.issued', i.client_id, i.user_id, $10::jsonb FROM issued i
RETURNING 1;
