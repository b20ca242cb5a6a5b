-- Failures of a client, counted towards pauses (RFC 6749 §2.3.1, RFC 6819 §5.1.4.2.3):
--   secret         wrong secrets, per client and address: a pause holds only the address that
--                  guessed, so nobody who knows a client id can lock it out from everywhere;
--   guess          codes, refresh tokens and tokens to revoke that do not exist (or whose MAC
--                  fails), per client (address ''): a client scanning for values;
--   introspection  the same at the introspection endpoint, counted apart: a resource server
--                  passes on whatever its callers send, and has a limit of its own.
-- They replace the 'client:' keys of login_failures, which now counts sign-ins only.
CREATE TABLE client_failures (
    client_id    text NOT NULL REFERENCES clients ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind IN ('secret', 'guess', 'introspection')),
    address      text NOT NULL DEFAULT '' CHECK (length(address) <= 100),
    failures     integer NOT NULL CHECK (failures >= 0),
    max_failures integer NOT NULL CHECK (max_failures > 0),  -- the limit when last counted
    window_start timestamptz NOT NULL DEFAULT now(),
    locked_until timestamptz,
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (client_id, kind, address)
);
CREATE INDEX client_failures_expires_idx ON client_failures (expires_at);

DELETE FROM login_failures WHERE throttle_key LIKE 'client:%';
DROP TRIGGER client_pauses_changed ON login_failures;

CREATE OR REPLACE FUNCTION notify_client_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('authserver_client_changed',
                      CASE WHEN TG_OP = 'DELETE' THEN OLD.client_id ELSE NEW.client_id END);
    RETURN NULL;
END;
$$;

CREATE TRIGGER client_failures_changed AFTER INSERT OR UPDATE OR DELETE ON client_failures
    FOR EACH ROW EXECUTE FUNCTION notify_client_changed();

-- What client authentication reads, in one row: the client, its valid secrets' digests, and
-- whether something of it is paused: the *_paused_for columns say, in seconds from now, when
-- the first pause of that kind ends (which address is paused is asked only then); they and
-- secret_expires_in tell a cached copy when it goes stale without a write.
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

-- Constant PKCE challenges are looked for among a client's recent codes (RFC 9700 §2.1.1).
CREATE INDEX authorization_codes_challenge_idx ON authorization_codes (client_id, code_challenge)
    WHERE code_challenge IS NOT NULL;
