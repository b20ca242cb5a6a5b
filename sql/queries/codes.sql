-- name: insert_code
-- Store a new authorization code by its digest; say whether another code of the client had the
-- same PKCE challenge (a constant challenge protects nothing: RFC 9700 §2.1.1).
INSERT INTO authorization_codes (digest, client_id, user_id, grant_id, redirect_uri, scope,
                                 code_challenge, code_challenge_method, expires_at, nonce,
                                 auth_time)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now() + make_interval(secs => $9::double precision),
        $10, $11)
RETURNING $7::text IS NOT NULL AND EXISTS (
    SELECT 1 FROM authorization_codes c
    WHERE c.client_id = $2 AND c.code_challenge = $7 AND c.digest <> $1
) AS challenge_reused;

-- name: code_by_digest
-- An authorization code, with whether it is still within its lifetime by the database clock.
SELECT digest, client_id, user_id, grant_id, redirect_uri, scope, code_challenge,
       code_challenge_method, consumed_at IS NOT NULL AS consumed, expires_at > now() AS live,
       nonce, auth_time
FROM authorization_codes
WHERE digest = $1;

-- name: claim_code
-- Consume a code; no row back means it was already used (or expired) and must not issue.
UPDATE authorization_codes SET consumed_at = now()
WHERE digest = $1 AND consumed_at IS NULL AND expires_at > now()
RETURNING grant_id;

-- name: delete_unredeemed_codes_of_user
-- Codes of a user not redeemed yet can no longer be (a password change or reset).
DELETE FROM authorization_codes WHERE user_id = $1 AND consumed_at IS NULL;

-- name: delete_unredeemed_codes_of_client
-- Codes of a client not redeemed yet can no longer be (the client was disabled).
DELETE FROM authorization_codes WHERE client_id = $1 AND consumed_at IS NULL;
