-- State the login and consent pages share across replicas: failed-login counters for
-- throttling, and the single-use nonces of consent forms.

CREATE TABLE login_failures (
    throttle_key    text PRIMARY KEY CHECK (length(throttle_key) <= 400),
    failures        integer NOT NULL CHECK (failures >= 0),
    window_start    timestamptz NOT NULL DEFAULT now(),
    locked_until    timestamptz,
    expires_at      timestamptz NOT NULL
);
CREATE INDEX login_failures_expires_idx ON login_failures (expires_at);

-- A consent form may be submitted once: its nonce is claimed by the first submission.
CREATE TABLE consent_nonces (
    nonce      text PRIMARY KEY CHECK (length(nonce) BETWEEN 16 AND 64),
    expires_at timestamptz NOT NULL
);
CREATE INDEX consent_nonces_expires_idx ON consent_nonces (expires_at);

-- Signed-in browser sessions. The cookie carries only a signed random id; this row is what
-- makes it signed in, so signing out (or deleting the user) ends it everywhere at once.
CREATE TABLE browser_sessions (
    sid_digest bytea PRIMARY KEY CHECK (length(sid_digest) = 32),
    user_id    text NOT NULL REFERENCES users ON DELETE CASCADE,
    login_at   timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX browser_sessions_user_idx ON browser_sessions (user_id);
CREATE INDEX browser_sessions_expires_idx ON browser_sessions (expires_at);
