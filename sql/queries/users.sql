-- name: upsert_user
-- Create or replace a user by the platform's id; $6 keeps the stored password hash (and a
-- wrapped Phraseanet hash with it), anything else replaces both.
INSERT INTO users (user_id, login, email, display_name, password_hash, email_verified)
VALUES ($1, $2, $3, $4, $5, $7)
ON CONFLICT (user_id) DO UPDATE SET
    login = EXCLUDED.login,
    email = EXCLUDED.email,
    display_name = EXCLUDED.display_name,
    email_verified = EXCLUDED.email_verified,
    password_hash = CASE WHEN $6 THEN users.password_hash ELSE EXCLUDED.password_hash END,
    legacy_scheme = CASE WHEN $6 THEN users.legacy_scheme END,
    legacy_salt = CASE WHEN $6 THEN users.legacy_salt END,
    legacy_source = CASE WHEN $6 THEN users.legacy_source END,
    updated_at = now()
RETURNING *, (xmax = 0) AS inserted;

-- name: get_user
-- One user by the platform's id.
SELECT * FROM users WHERE user_id = $1;

-- name: user_by_login
-- One user by login, ignoring case (the unique index is on lower(login)).
SELECT * FROM users WHERE lower(login) = lower($1);

-- name: set_password_hash
-- Replace a password hash after a verify found its parameters outdated.
UPDATE users SET password_hash = $2, updated_at = now() WHERE user_id = $1;

-- name: upgrade_legacy_password
-- Replace a wrapped Phraseanet hash by a plain argon2id of the password that just verified,
-- unless the row changed meanwhile (another sign-in upgraded it, the platform set a password).
UPDATE users SET password_hash = $2, legacy_scheme = NULL, legacy_salt = NULL,
                 legacy_source = NULL, updated_at = now()
WHERE user_id = $1 AND legacy_source = $3;

-- name: delete_user
-- Delete a user; foreign keys cascade to their clients, grants, codes and tokens.
DELETE FROM users WHERE user_id = $1 RETURNING user_id;

-- name: lock_user
-- One user, locked until the end of the transaction that reads it (NO KEY: rows that refer to
-- the user, such as tokens being issued, are not held up).
SELECT * FROM users WHERE user_id = $1 FOR NO KEY UPDATE;
