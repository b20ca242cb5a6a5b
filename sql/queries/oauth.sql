-- name: client_for_auth
-- An application with the digests of its valid secrets, and whether too many failed
-- authentications have paused it, for client authentication in one round trip.
SELECT c.*,
       ARRAY(SELECT s.key_id FROM client_secrets s
             WHERE s.client_id = c.client_id AND (s.expires_at IS NULL OR s.expires_at > now())
             ORDER BY s.secret_id) AS secret_key_ids,
       ARRAY(SELECT s.digest FROM client_secrets s
             WHERE s.client_id = c.client_id AND (s.expires_at IS NULL OR s.expires_at > now())
             ORDER BY s.secret_id) AS secret_digests,
       EXISTS (SELECT 1 FROM login_failures f
               WHERE f.throttle_key = 'client:' || c.client_id AND f.locked_until > now())
           AS auth_locked
FROM clients c
WHERE c.client_id = $1;

-- name: code_by_digest
-- An authorization code, with whether it is still within its lifetime by the database clock.
SELECT digest, client_id, user_id, grant_id, redirect_uri, scope, code_challenge,
       code_challenge_method, consumed_at IS NOT NULL AS consumed, expires_at > now() AS live
FROM authorization_codes
WHERE digest = $1;

-- name: token_by_digest
-- A token with what introspection answers and what the refresh grant checks.
SELECT t.digest, t.kind, t.client_id, t.user_id, t.grant_id, t.family_id, t.scope, t.developer,
       t.created_at, t.expires_at, u.login AS username,
       t.consumed_at IS NOT NULL AS consumed,
       t.revoked_at IS NOT NULL AS revoked,
       (t.expires_at IS NULL OR t.expires_at > now()) AS live,
       c.active AS client_active
FROM tokens t
JOIN clients c ON c.client_id = t.client_id
LEFT JOIN users u ON u.user_id = t.user_id
WHERE t.digest = $1;

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
