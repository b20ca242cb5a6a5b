-- Taking over a live Phraseanet (docs/phraseanet.md): its users' password hashes, PKCE per
-- client, its 32-character tokens, and where an import stopped.

-- D1: a Phraseanet hash (HMAC-SHA512 or unsalted SHA-256, lowercase hex) is never stored as it
-- is, a fast hash at rest: password_hash holds argon2id of that hex, and these columns say how
-- to compute the hex from a password. The first sign-in that verifies replaces them all by a
-- plain argon2id of the password.
ALTER TABLE users
    ADD COLUMN legacy_scheme text
        CHECK (legacy_scheme IN ('phraseanet-hmac-sha512', 'phraseanet-sha256')),
    ADD COLUMN legacy_salt text CHECK (length(legacy_salt) <= 64),  -- Phraseanet's nonce
    -- SHA-256 of the source row's scheme, nonce and hash: a re-run that finds the same value
    -- has nothing to wrap again, and one that finds no legacy columns leaves the password alone.
    ADD COLUMN legacy_source bytea CHECK (length(legacy_source) = 32),
    ADD CONSTRAINT users_legacy_check CHECK (
        (legacy_scheme IS NULL) = (legacy_source IS NULL)
        AND (legacy_scheme IS NOT NULL OR legacy_salt IS NULL)
        AND (legacy_scheme IS NULL OR password_hash IS NOT NULL));

-- D17: PKCE per client. Imported web apps predate it (Phraseanet's PHP SDK sends none); public
-- (desktop) clients always need it.
ALTER TABLE clients
    ADD COLUMN require_pkce boolean NOT NULL DEFAULT true,
    ADD CONSTRAINT clients_require_pkce_check CHECK (require_pkce OR client_type = 'web');

-- The view lists the clients' columns as they were when it was made: made again to carry
-- require_pkce (the definition is 0008's).
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

-- D9, D12: Phraseanet's access tokens (32 characters, no kind prefix, no MAC), stored as the
-- SHA-256 digest of their exact value like every token. They are looked up only among these
-- rows, and only while there are any: the partial index answers "are there any" at once.
ALTER TABLE tokens
    ADD COLUMN legacy boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT tokens_legacy_check CHECK (NOT legacy OR kind = 'access');
CREATE INDEX tokens_legacy_idx ON tokens (digest) WHERE legacy;

CREATE OR REPLACE VIEW token_status AS
SELECT t.digest, t.kind, t.client_id, t.user_id, t.grant_id, t.family_id, t.scope, t.developer,
       t.created_at, t.expires_at, u.login AS username,
       t.consumed_at IS NOT NULL AS consumed,
       t.revoked_at IS NOT NULL AS revoked,
       (t.expires_at IS NULL OR t.expires_at > now()) AS live,
       c.active AS client_active,
       t.legacy
FROM tokens t
JOIN clients c ON c.client_id = t.client_id
LEFT JOIN users u ON u.user_id = t.user_id;

-- Where the import from a Phraseanet appbox stands, one row per stage, written in the same
-- transaction as each batch: an interrupted run resumes after the last batch written. A run
-- whose stages are all finished is over; the next one starts again from the beginning.
CREATE TABLE phraseanet_import (
    stage      text PRIMARY KEY CHECK (stage IN ('users', 'clients', 'grants', 'tokens')),
    position   text NOT NULL DEFAULT '',  -- the key of the last source row written, in order
    finished   boolean NOT NULL DEFAULT false,
    started_at timestamptz NOT NULL DEFAULT now(),  -- the run's start: flow tokens expire from it
    updated_at timestamptz NOT NULL DEFAULT now()
);
