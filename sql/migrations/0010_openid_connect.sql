-- OpenID Connect (docs in README, "OpenID Connect"): signing keys, what ID tokens say of users,
-- per-client ID token settings, and what an ID token issued later must remember of the sign-in.

-- Keys that sign ID tokens, as JWKs. The private part is encrypted (AES-256-GCM) under a key
-- derived from the server key named by key_id: a backup of this table signs nothing. A key
-- signs from active_from (every replica publishes it before then) until retired_at, and stays
-- published until expires_at, when no token it signed can still be valid.
CREATE TABLE signing_keys (
    kid          text PRIMARY KEY CHECK (kid ~ '^[A-Za-z0-9_-]{8,64}$'),
    alg          text NOT NULL CHECK (alg IN ('RS256', 'ES256')),
    public_jwk   jsonb NOT NULL,
    private_jwk  bytea NOT NULL,  -- nonce || AES-GCM ciphertext of the private JWK's JSON
    key_id       text NOT NULL,   -- the server key the private part is encrypted under
    created_at   timestamptz NOT NULL DEFAULT now(),
    active_from  timestamptz NOT NULL DEFAULT now(),
    retired_at   timestamptz,
    expires_at   timestamptz,
    CHECK ((retired_at IS NULL) = (expires_at IS NULL))
);
CREATE INDEX signing_keys_expires_idx ON signing_keys (expires_at);

-- OpenID Connect Core §5.1: email_verified, as the platform knows it.
ALTER TABLE users ADD COLUMN email_verified boolean NOT NULL DEFAULT false;

-- OpenID Connect Registration §2: how a client's ID tokens are signed, and where RP-initiated
-- logout may send the user back to (exact match, like redirect URIs).
ALTER TABLE clients
    ADD COLUMN id_token_signed_response_alg text NOT NULL DEFAULT 'RS256'
        CHECK (id_token_signed_response_alg IN ('RS256', 'ES256')),
    ADD COLUMN post_logout_redirect_uris text[] NOT NULL DEFAULT '{}'
        CHECK (cardinality(post_logout_redirect_uris) <= 20);

-- The sign-in a code was issued under (Core §2 auth_time) and the request's nonce; refresh
-- tokens carry auth_time on, so an ID token issued at a refresh names the original sign-in.
ALTER TABLE authorization_codes
    ADD COLUMN nonce text CHECK (length(nonce) <= 512),
    ADD COLUMN auth_time timestamptz;
ALTER TABLE tokens ADD COLUMN auth_time timestamptz;

-- The views list columns as they were when made: made again (0009's definitions) to carry the
-- new ones.
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

CREATE OR REPLACE VIEW token_status AS
SELECT t.digest, t.kind, t.client_id, t.user_id, t.grant_id, t.family_id, t.scope, t.developer,
       t.created_at, t.expires_at, u.login AS username,
       t.consumed_at IS NOT NULL AS consumed,
       t.revoked_at IS NOT NULL AS revoked,
       (t.expires_at IS NULL OR t.expires_at > now()) AS live,
       c.active AS client_active,
       t.legacy,
       t.auth_time
FROM tokens t
JOIN clients c ON c.client_id = t.client_id
LEFT JOIN users u ON u.user_id = t.user_id;
