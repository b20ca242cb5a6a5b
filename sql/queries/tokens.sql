-- name: issue_tokens
-- Store the tokens of one or more issues (one array element per token, $1 to $10; a NULL
-- lifetime never expires) and one token.issued event per issue ($11 to $13) in one statement:
-- atomic without a transaction, and one round trip. A data-modifying WITH runs once and to
-- completion whatever the outer statement reads.
WITH issued AS (
    INSERT INTO tokens (digest, kind, client_id, user_id, grant_id, family_id, code_digest, scope,
                        developer, expires_at)
    SELECT t.digest, t.kind, t.client_id, t.user_id, t.grant_id, t.family_id, t.code_digest,
           t.scope, t.developer, now() + make_interval(secs => t.expires_in)
    FROM unnest($1::bytea[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::uuid[],
                $7::bytea[], $8::text[], $9::double precision[], $10::boolean[])
         AS t(digest, kind, client_id, user_id, grant_id, family_id, code_digest, scope,
              expires_in, developer)
)
INSERT INTO audit_events (kind, client_id, user_id, detail)
SELECT 'token.issued', a.client_id, a.user_id, a.detail::jsonb
FROM unnest($11::text[], $12::text[], $13::text[]) AS a(client_id, user_id, detail);

-- name: delete_developer_tokens
-- Kill the developer tokens of a grant, before issuing the one that replaces them.
DELETE FROM tokens WHERE grant_id = $1 AND developer;
