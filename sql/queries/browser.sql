-- name: login_locked
-- Whether any of the given throttle keys is locked out right now.
SELECT EXISTS (
    SELECT 1 FROM login_failures
    WHERE throttle_key = ANY($1::text[]) AND locked_until > now()
);

-- name: record_login_failure
-- Count a failed login for a key; lock it once $2 failures fall within the window of $3 seconds.
INSERT INTO login_failures AS f (throttle_key, failures, window_start, locked_until, expires_at)
VALUES ($1, 1, now(), CASE WHEN $2 <= 1 THEN now() + make_interval(secs => $3) END,
        now() + make_interval(secs => $3))
ON CONFLICT (throttle_key) DO UPDATE SET
    failures = CASE WHEN f.window_start + make_interval(secs => $3) < now() THEN 1
                    ELSE f.failures + 1 END,
    window_start = CASE WHEN f.window_start + make_interval(secs => $3) < now() THEN now()
                        ELSE f.window_start END,
    locked_until = CASE
        WHEN f.window_start + make_interval(secs => $3) < now() THEN
            CASE WHEN $2 <= 1 THEN now() + make_interval(secs => $3) END
        WHEN f.failures + 1 >= $2 THEN now() + make_interval(secs => $3)
        ELSE f.locked_until END,
    expires_at = now() + make_interval(secs => $3);

-- name: clear_login_failures
-- A successful login forgets the failures counted against the account.
DELETE FROM login_failures WHERE throttle_key = $1;

-- name: claim_consent_nonce
-- Use a consent form's nonce; no row back means the form was already submitted.
INSERT INTO consent_nonces (nonce, expires_at) VALUES ($1, now() + make_interval(secs => $2))
ON CONFLICT (nonce) DO NOTHING
RETURNING nonce;

-- name: active_grant
-- A user's unrevoked grant for a client, with the scopes consented to.
SELECT grant_id, scopes FROM grants
WHERE user_id = $1 AND client_id = $2 AND revoked_at IS NULL;

-- name: insert_code
-- Store a new authorization code by its digest.
INSERT INTO authorization_codes (digest, client_id, user_id, grant_id, redirect_uri, scope,
                                 code_challenge, code_challenge_method, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now() + make_interval(secs => $9::double precision));

-- name: insert_session
-- Sign a browser session in for $3 seconds.
INSERT INTO browser_sessions (sid_digest, user_id, expires_at)
VALUES ($1, $2, now() + make_interval(secs => $3::double precision));

-- name: session_user
-- The user a live browser session is signed in as.
SELECT u.* FROM browser_sessions s JOIN users u ON u.user_id = s.user_id
WHERE s.sid_digest = $1 AND s.expires_at > now();

-- name: delete_session
-- Sign a browser session out.
DELETE FROM browser_sessions WHERE sid_digest = $1;
