-- name: phraseanet_progress
-- Where the last import run stands, stage by stage (authserver.phraseanet.writer).
SELECT stage, position, finished, started_at FROM phraseanet_import;

-- name: phraseanet_start_run
-- Start a run from the beginning: every stage at no position, the run's start now.
INSERT INTO phraseanet_import (stage) SELECT unnest($1::text[])
ON CONFLICT (stage) DO UPDATE SET position = '', finished = false, started_at = now(),
                                  updated_at = now();

-- name: phraseanet_advance
-- Record a written batch: the stage's last source key, and whether the stage is done.
UPDATE phraseanet_import SET position = $2, finished = $3, updated_at = now() WHERE stage = $1;

-- name: phraseanet_password_states
-- For users about to be written: the wrapped source they hold, and whether their password is
-- authserver's own (upgraded at sign-in or set by the platform), which an import never touches.
SELECT user_id, legacy_source,
       (password_hash IS NOT NULL AND legacy_source IS NULL) AS native
FROM users WHERE user_id = ANY($1::text[]);

-- name: phraseanet_taken_logins
-- Which of these logins (D4) an authserver user that is not being imported already has.
SELECT DISTINCT l.login FROM unnest($1::text[]) AS l(login)
JOIN users u ON lower(u.login) = lower(l.login)
WHERE NOT (u.user_id = ANY($2::text[]));

-- name: phraseanet_write_users
-- Users of one batch ($1 to $11, the fields of authserver.db.rows.ImportedUser in order): new
-- ones inserted; existing ones updated, in the same statement (the UPDATE sees the rows as
-- they were before it, so it touches only those). keep_password leaves the stored hash as it
-- is (its source is the same: nothing to wrap again); a native password always stays.
WITH n AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                         $6::text[], $7::text[], $8::bytea[], $9::boolean[],
                         $10::timestamptz[], $11::timestamptz[])
        AS n(user_id, login, email, display_name, password_hash, legacy_scheme, legacy_salt,
             legacy_source, keep_password, created_at, updated_at)
), inserted AS (
    INSERT INTO users (user_id, login, email, display_name, password_hash, legacy_scheme,
                       legacy_salt, legacy_source, created_at, updated_at)
    SELECT user_id, login, email, display_name, password_hash, legacy_scheme, legacy_salt,
           legacy_source, created_at, updated_at
    FROM n
    WHERE NOT n.keep_password  -- such a user exists already (and the row would break a CHECK)
    ON CONFLICT (user_id) DO NOTHING
    RETURNING user_id
)
UPDATE users u SET
    login = n.login, email = n.email, display_name = n.display_name,
    password_hash = CASE WHEN (u.password_hash IS NOT NULL AND u.legacy_source IS NULL)
                              OR n.keep_password THEN u.password_hash
                         ELSE n.password_hash END,
    legacy_scheme = CASE WHEN u.password_hash IS NOT NULL AND u.legacy_source IS NULL THEN NULL
                         WHEN n.keep_password THEN u.legacy_scheme ELSE n.legacy_scheme END,
    legacy_salt = CASE WHEN u.password_hash IS NOT NULL AND u.legacy_source IS NULL THEN NULL
                       WHEN n.keep_password THEN u.legacy_salt ELSE n.legacy_salt END,
    legacy_source = CASE WHEN u.password_hash IS NOT NULL AND u.legacy_source IS NULL THEN NULL
                         WHEN n.keep_password THEN u.legacy_source ELSE n.legacy_source END,
    updated_at = now()
FROM n WHERE u.user_id = n.user_id;

-- name: phraseanet_write_owner
-- The one synthetic owner of applications whose creator is not imported (D6), no password.
INSERT INTO users (user_id, login, display_name) VALUES ($1, $2, 'Phraseanet applications')
ON CONFLICT (user_id) DO NOTHING;

-- name: phraseanet_write_clients
-- Applications of one batch ($1 to $13, the fields of authserver.db.rows.ImportedClient; the
-- redirect URIs of each joined by spaces, which no URI holds, as arrays of arrays must be
-- rectangular): new
-- ones inserted with their secret's digest; existing ones get Phraseanet's fields again, while
-- what authserver owns (active, require_pkce, secrets, introspection) stays as it is.
WITH n AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                         $6::text[], $7::text[], $8::boolean[], $9::boolean[], $10::text[],
                         $11::bytea[], $12::timestamptz[], $13::timestamptz[])
        AS n(client_id, name, description, website, client_type, redirect_uris, owner_id,
             password_grant, require_pkce, key_id, digest, created_at, updated_at)
), inserted AS (
    INSERT INTO clients (client_id, name, description, website, client_type, redirect_uris,
                         owner_id, password_grant, require_pkce, created_at, updated_at)
    SELECT client_id, name, description, website, client_type,
           string_to_array(redirect_uris, ' '), owner_id, password_grant, require_pkce,
           created_at, updated_at
    FROM n
    ON CONFLICT (client_id) DO NOTHING
    RETURNING client_id
), secrets AS (
    INSERT INTO client_secrets (client_id, key_id, digest)
    SELECT n.client_id, n.key_id, n.digest FROM n JOIN inserted USING (client_id)
    WHERE n.digest IS NOT NULL
)
UPDATE clients c SET
    name = n.name, description = n.description, website = n.website,
    redirect_uris = string_to_array(n.redirect_uris, ' '), owner_id = n.owner_id,
    password_grant = n.password_grant, updated_at = now()
FROM n WHERE c.client_id = n.client_id;

-- name: phraseanet_write_grants
-- Grants of one batch (D14): created once; a re-run leaves what authserver did since alone.
INSERT INTO grants (user_id, client_id, scopes, created_at, revoked_at)
SELECT n.user_id, n.client_id, '{read,write}', n.created_at,
       CASE WHEN n.revoked THEN now() END
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::boolean[])
    AS n(user_id, client_id, created_at, revoked)
ON CONFLICT (user_id, client_id) DO NOTHING;

-- name: phraseanet_write_tokens
-- Tokens of one batch (D8, D9): by digest, flagged legacy, under their grant if it is live
-- (one revoked in authserver since a first run gets none back); a token already there stays.
INSERT INTO tokens (digest, kind, client_id, user_id, grant_id, scope, developer, created_at,
                    expires_at, legacy)
SELECT n.digest, 'access', n.client_id, n.user_id, g.grant_id, 'read write', n.developer,
       n.created_at, n.expires_at, true
FROM unnest($1::bytea[], $2::text[], $3::text[], $4::boolean[], $5::timestamptz[],
            $6::timestamptz[]) AS n(digest, client_id, user_id, developer, created_at, expires_at)
JOIN grants g ON g.user_id = n.user_id AND g.client_id = n.client_id AND g.revoked_at IS NULL
ON CONFLICT (digest) DO NOTHING;
