-- name: insert_session
-- Sign a browser session in for $3 seconds.
INSERT INTO browser_sessions (sid_digest, user_id, expires_at)
VALUES ($1, $2, now() + make_interval(secs => $3::double precision));

-- name: session_user
-- The user a live browser session is signed in as, and when they signed in.
SELECT u.*, s.login_at FROM browser_sessions s JOIN users u ON u.user_id = s.user_id
WHERE s.sid_digest = $1 AND s.expires_at > now();

-- name: delete_session
-- Sign a browser session out.
DELETE FROM browser_sessions WHERE sid_digest = $1;

-- name: claim_consent_nonce
-- Use a consent form's nonce; no row back means the form was already submitted.
INSERT INTO consent_nonces (nonce, expires_at) VALUES ($1, now() + make_interval(secs => $2))
ON CONFLICT (nonce) DO NOTHING
RETURNING nonce;

-- name: delete_user_sessions
-- Sign a user out of every browser; how many sessions ended.
WITH ended AS (
    DELETE FROM browser_sessions WHERE user_id = $1 RETURNING 1
)
SELECT count(*) FROM ended;
