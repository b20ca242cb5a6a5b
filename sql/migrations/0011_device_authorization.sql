-- The device authorization grant (RFC 8628; README, "Devices"): which applications may use
-- it, and the device codes between a device's request and the user's decision.

-- Off unless the application's owner asks for it: a device grant lets whoever holds the device
-- ask any user to approve it, so an app that never needs it should not offer that door.
ALTER TABLE clients ADD COLUMN device_grant boolean NOT NULL DEFAULT false;

-- One device authorization request. The device code (a MAC'd token, like the others) and the
-- user code are stored only as digests: the device code by SHA-256, the user code keyed under
-- a server key (it is short by design, so a plain digest would be reversed at once). The user
-- approves or denies once (status leaves 'pending' by a conditional write), the device redeems
-- once (consumed_at, the same way). poll_interval grows by 5 s each time the device polls
-- faster than it (RFC 8628 §3.5 slow_down).
CREATE TABLE device_codes (
    digest           bytea PRIMARY KEY CHECK (length(digest) = 32),
    user_code_digest bytea NOT NULL UNIQUE CHECK (length(user_code_digest) = 32),
    client_id        text NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    scope            text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    poll_interval    integer NOT NULL CHECK (poll_interval BETWEEN 1 AND 3600),
    last_polled_at   timestamptz,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'approved', 'denied')),
    user_id          text REFERENCES users (user_id) ON DELETE CASCADE,
    grant_id         bigint REFERENCES grants (grant_id) ON DELETE CASCADE,
    auth_time        timestamptz,
    decided_at       timestamptz,
    consumed_at      timestamptz,
    CHECK ((status = 'pending') = (decided_at IS NULL)),
    CHECK ((status = 'approved') = (grant_id IS NOT NULL)),
    CHECK (status <> 'approved' OR user_id IS NOT NULL),
    CHECK (consumed_at IS NULL OR status = 'approved')
);
-- The metadata document asks whether any application has it on.
CREATE INDEX clients_device_grant_idx ON clients (client_id) WHERE device_grant;

CREATE INDEX device_codes_expires_idx ON device_codes (expires_at);
CREATE INDEX device_codes_client_idx ON device_codes (client_id);
CREATE INDEX device_codes_user_idx ON device_codes (user_id);
CREATE INDEX device_codes_grant_idx ON device_codes (grant_id);

-- The view lists columns as they were when made: made again (0010's definition) to carry the
-- new one.
DROP VIEW client_auth;
CREATE VIEW client_auth AS
SELECT c.*,
       ARRAY(SELECT s.key_id FROM client_secrets s
             WHERE s.client_id = c.client_id AND (s.expires_at IS NULL OR s.expires_at > now())
             ORDER BY s.secret_id) AS secret_key_ids,
       ARRAY(SELECT s.digest FROM client_secrets s
             WHERE s.client_id = c.client_id AND (s.expires_at IS NULL OR s.expires_at > now())
             ORDER BY s.secret_id) AS secret_digests,
       (SELECT extract(epoch FROM min(s.expires_at) - now())::float8 FROM client_secrets s
        WHERE s.client_id = c.client_id AND s.expires_at > now()) AS secret_expires_in,
       (SELECT extract(epoch FROM min(f.locked_until) - now())::float8 FROM client_failures f
        WHERE f.client_id = c.client_id AND f.kind = 'secret' AND f.locked_until > now())
           AS secret_paused_for,
       (SELECT extract(epoch FROM min(f.locked_until) - now())::float8 FROM client_failures f
        WHERE f.client_id = c.client_id AND f.kind = 'guess' AND f.locked_until > now())
           AS guess_paused_for,
       (SELECT extract(epoch FROM min(f.locked_until) - now())::float8 FROM client_failures f
        WHERE f.client_id = c.client_id AND f.kind = 'introspection' AND f.locked_until > now())
           AS introspection_paused_for
FROM clients c;
