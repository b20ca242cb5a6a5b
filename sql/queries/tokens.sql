-- name: insert_token
-- Store a newly issued token by its digest; it expires $10 seconds from now (never if NULL).
INSERT INTO tokens (digest, kind, client_id, user_id, grant_id, family_id, code_digest, scope,
                    developer, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,
        now() + make_interval(secs => $10::double precision));

-- name: issue_tokens
-- Store the tokens one grant issued ($1, $2, $8, $9: one array element per token, all for
-- client $3, user $4, grant $5, family $6, code $7) and the audit event of their issue ($10,
-- detail $11) in one statement: atomic without a transaction, and one round trip. A
-- data-modifying WITH runs once and to completion whatever the outer statement reads.
WITH issued AS (
    INSERT INTO tokens (digest, kind, client_id, user_id, grant_id, family_id, code_digest, scope,
                        developer, expires_at)
    SELECT t.digest, t.kind, $3, $4, $5, $6, $7, t.scope, false,
           now() + make_interval(secs => t.expires_in)
    FROM unnest($1::bytea[], $2::text[], $8::text[], $9::double precision[])
         AS t(digest, kind, scope, expires_in)
)
INSERT INTO audit_events (kind, client_id, user_id, detail) VALUES ($10, $3, $4, $11);

-- name: delete_developer_tokens
-- Kill the developer tokens of a grant, before issuing the one that replaces them.
DELETE FROM tokens WHERE grant_id = $1 AND developer;
