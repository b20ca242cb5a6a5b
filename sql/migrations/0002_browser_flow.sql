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
