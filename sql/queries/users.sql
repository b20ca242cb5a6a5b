-- name: upsert_user
-- Create or replace a user by the platform's id; $6 keeps the stored password hash.
INSERT INTO users (user_id, login, email, display_name, password_hash)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (user_id) DO UPDATE SET
    login = EXCLUDED.login,
    email = EXCLUDED.email,
    display_name = EXCLUDED.display_name,
    password_hash = CASE WHEN $6 THEN users.password_hash ELSE EXCLUDED.password_hash END,
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

-- name: delete_user
-- Delete a user; foreign keys cascade to their clients, grants, codes and tokens.
DELETE FROM users WHERE user_id = $1 RETURNING user_id;

-- name: lock_user
-- One user, locked until the end of the transaction that reads it (NO KEY: rows that refer to
-- the user, such as tokens being issued, are not held up).
SELECT * FROM users WHERE user_id = $1 FOR NO KEY UPDATE;
