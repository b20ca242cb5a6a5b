-- name: insert_token
-- Store a newly issued token by its digest; it expires $10 seconds from now (never if NULL).
INSERT INTO tokens (digest, kind, client_id, user_id, grant_id, family_id, code_digest, scope,
                    developer, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,
        now() + make_interval(secs => $10::double precision));

-- name: delete_developer_tokens
-- Kill the developer tokens of a grant, before issuing the one that replaces them.
DELETE FROM tokens WHERE grant_id = $1 AND developer;
