-- name: insert_token
-- Store a newly issued token by its digest; it expires $10 seconds from now (never if NULL).
INSERT INTO tokens (digest, kind, client_id, user_id, grant_id, family_id, code_digest, scope,
                    developer, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,
        now() + make_interval(secs => $10::double precision));

-- name: issue_tokens
-- Store the tokens of one or more issues (one array element per token, $1 to $9) and one
-- token.issued event per issue ($10 to $12) in one statement: atomic without a transaction,
-- and one round trip. A data-modifying WITH runs once and to completion whatever the outer
-- statement reads.
WITH issued AS (
    INSERT INTO tokens (digest, kind, client_id, user_id, grant_id, family_id, code_digest, scope,
                        developer, expires_at)
    SELECT t.digest, t.kind, t.client_id, t.user_id, t.grant_id, t.family_id, t.code_digest,
           t.scope, false, now() + make_interval(secs => t.expires_in)
    FROM unnest($1::bytea[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::uuid[],
                $7::bytea[], $8::text[], $9::double precision[])
         AS t(digest, kind, client_id, user_id, grant_id, family_id, code_digest, scope,
              expires_in)
)
INSERT INTO audit_events (kind, client_id, user_id, detail)
SELECT 'token.issued', a.client_id, a.user_id, a.detail::jsonb
FROM unnest($10::text[], $11::text[], $12::text[]) AS a(client_id, user_id, detail);

-- name: delete_developer_tokens
-- Kill the developer tokens of a grant, before issuing the one that replaces them.
DELETE FROM tokens WHERE grant_id = $1 AND developer;
