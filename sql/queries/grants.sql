-- name: ensure_grant
-- The user's grant for a client, created or revived, with at least the given scopes.
INSERT INTO grants (user_id, client_id, scopes) VALUES ($1, $2, $3)
ON CONFLICT (user_id, client_id) DO UPDATE SET
    scopes = ARRAY(SELECT DISTINCT unnest(
        CASE WHEN grants.revoked_at IS NULL THEN grants.scopes ELSE '{}' END || EXCLUDED.scopes)
        ORDER BY 1),
    revoked_at = NULL,
    updated_at = now()
RETURNING grant_id, scopes;

-- name: active_grant
-- A user's unrevoked grant for a client, with the scopes consented to.
SELECT grant_id, scopes FROM grants
WHERE user_id = $1 AND client_id = $2 AND revoked_at IS NULL;

-- name: list_user_grants
-- The applications a user has authorized and not revoked, with what to show for each.
SELECT g.client_id, g.scopes, g.created_at, g.updated_at,
       c.name, c.description, c.website, c.owner_id
FROM grants g JOIN clients c USING (client_id)
WHERE g.user_id = $1 AND g.revoked_at IS NULL
ORDER BY g.created_at, g.client_id;

-- name: revoke_grant
-- Revoke a user's grant to a client and delete every code, device code and token issued under
-- it.
WITH revoked AS (
    UPDATE grants SET revoked_at = now(), scopes = '{}', updated_at = now()
    WHERE user_id = $1 AND client_id = $2 AND revoked_at IS NULL
    RETURNING grant_id
), dead_tokens AS (
    DELETE FROM tokens WHERE grant_id IN (SELECT grant_id FROM revoked)
), dead_codes AS (
    DELETE FROM authorization_codes WHERE grant_id IN (SELECT grant_id FROM revoked)
), dead_device_codes AS (
    DELETE FROM device_codes WHERE grant_id IN (SELECT grant_id FROM revoked)
)
SELECT grant_id FROM revoked;
