-- name: client_for_auth
-- An application as client authentication needs it, in one round trip.
SELECT * FROM client_auth WHERE client_id = $1;

-- name: code_by_digest
-- An authorization code, with whether it is still within its lifetime by the database clock.
SELECT digest, client_id, user_id, grant_id, redirect_uri, scope, code_challenge,
       code_challenge_method, consumed_at IS NOT NULL AS consumed, expires_at > now() AS live
FROM authorization_codes
WHERE digest = $1;

-- name: tokens_by_digests
-- Tokens by digest, with what introspection answers and what the refresh grant checks;
-- the lookups in flight together go as one query (authserver.db.batches).
SELECT * FROM token_status WHERE digest = ANY($1::bytea[]);

-- name: claim_code
-- Consume a code; no row back means it was already used (or expired) and must not issue.
UPDATE authorization_codes SET consumed_at = now()
WHERE digest = $1 AND consumed_at IS NULL AND expires_at > now()
RETURNING grant_id;

-- name: claim_refresh_token
-- Rotate a refresh token out; no row back means another request already used it.
UPDATE tokens SET consumed_at = now()
WHERE digest = $1 AND kind = 'refresh' AND consumed_at IS NULL AND revoked_at IS NULL
  AND expires_at > now()
RETURNING family_id;

-- name: revoke_family
-- Revoke every token descended from one authorization (refresh reuse, code replay).
UPDATE tokens SET revoked_at = now()
WHERE family_id = $1 AND revoked_at IS NULL;

-- name: revoke_code_families
-- Revoke what a replayed code issued, and everything refreshed from it since.
UPDATE tokens SET revoked_at = now()
WHERE family_id IN (SELECT family_id FROM tokens WHERE code_digest = $1 AND family_id IS NOT NULL)
  AND revoked_at IS NULL;

-- name: revoke_token
-- Revoke one token of one client (RFC 7009 §2.1: a client revokes only its own tokens).
UPDATE tokens SET revoked_at = now()
WHERE digest = $1 AND client_id = $2 AND revoked_at IS NULL
RETURNING kind, family_id;
