-- name: insert_client
-- Register an application.
INSERT INTO clients (client_id, name, description, website, client_type, redirect_uris,
                     owner_id, password_grant, introspection, require_pkce,
                     id_token_signed_response_alg, post_logout_redirect_uris,
                     token_exchange, resource_server, device_grant)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
RETURNING *;

-- name: get_client
-- One application by client id.
SELECT * FROM clients WHERE client_id = $1;

-- name: lock_client
-- One application, locked until the end of the transaction that reads it. NO KEY UPDATE: its
-- id never changes, so tokens being issued to it (whose foreign key takes KEY SHARE on the
-- row) are not held up by an admin change (checklist R-13).
SELECT * FROM clients WHERE client_id = $1 FOR NO KEY UPDATE;

-- name: list_clients
-- Applications, optionally of one owner, in client id order after a cursor.
SELECT * FROM clients
WHERE ($1::text IS NULL OR owner_id = $1) AND client_id > $2
ORDER BY client_id
LIMIT $3;

-- name: update_client
-- Replace the editable fields of an application.
UPDATE clients SET
    name = $2, description = $3, website = $4, redirect_uris = $5,
    password_grant = $6, introspection = $7, active = $8, require_pkce = $9,
    id_token_signed_response_alg = $10, post_logout_redirect_uris = $11,
    token_exchange = $12, resource_server = $13, device_grant = $14, updated_at = now()
WHERE client_id = $1
RETURNING *;

-- name: delete_client
-- Delete an application; foreign keys cascade to its secrets, grants, codes and tokens.
DELETE FROM clients WHERE client_id = $1 RETURNING client_id;

-- name: insert_client_secret
-- Store the keyed digest of a new client secret.
INSERT INTO client_secrets (client_id, key_id, digest) VALUES ($1, $2, $3);

-- name: retire_client_secrets
-- Start a rotation: the current secret keeps working for $2 seconds, older ones stop now.
UPDATE client_secrets
SET expires_at = CASE WHEN expires_at IS NULL
                      THEN now() + make_interval(secs => $2)
                      ELSE least(expires_at, now()) END
WHERE client_id = $1 AND (expires_at IS NULL OR expires_at > now());

-- name: client_for_auth
-- An application as client authentication needs it, in one round trip.
SELECT * FROM client_auth WHERE client_id = $1;
