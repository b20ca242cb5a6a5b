-- OAuth 2.0 Token Exchange (RFC 8693): which web apps may exchange tokens, which are resource
-- servers a token may be addressed to (RFC 8707), and what an exchanged token remembers.

-- Both are for confidential (web) apps only: a public client cannot prove who is acting, and a
-- resource server introspects what it receives, which takes a secret.
ALTER TABLE clients
    ADD COLUMN token_exchange boolean NOT NULL DEFAULT false,
    ADD COLUMN resource_server boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT clients_token_exchange_check CHECK (NOT token_exchange OR client_type = 'web'),
    ADD CONSTRAINT clients_resource_server_check CHECK (NOT resource_server OR client_type = 'web');

-- audience: the resource server the token is addressed to (its client id); it dies with it.
-- actors: the clients that exchanged their way to this token, the latest first (the "act"
-- claim of RFC 8693 §4.1, nested in that order). subject_digest: the token it was exchanged
-- for, so that whatever ends the subject ends it too.
ALTER TABLE tokens
    ADD COLUMN audience text REFERENCES clients (client_id) ON DELETE CASCADE,
    ADD COLUMN actors text[] NOT NULL DEFAULT '{}',
    ADD COLUMN subject_digest bytea REFERENCES tokens (digest) ON DELETE CASCADE,
    ADD CONSTRAINT tokens_exchange_check CHECK (
        (subject_digest IS NULL) = (cardinality(actors) = 0)
        AND (subject_digest IS NULL OR (kind = 'access' AND user_id IS NOT NULL))
        AND (audience IS NULL OR subject_digest IS NOT NULL));
CREATE INDEX tokens_subject_idx ON tokens (subject_digest) WHERE subject_digest IS NOT NULL;
CREATE INDEX tokens_audience_idx ON tokens (audience) WHERE audience IS NOT NULL;

-- Revoking a token revokes what was exchanged for it, and so on down the chain, whichever
-- statement revoked it (RFC 7009, a refresh family, a password change, a disabled client):
-- one rule here rather than one in each of those queries. Deleting cascades by the key above.
CREATE FUNCTION revoke_exchanged_tokens() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tokens SET revoked_at = NEW.revoked_at
    WHERE subject_digest = NEW.digest AND revoked_at IS NULL;
    RETURN NULL;
END;
$$;
CREATE TRIGGER tokens_revoke_exchanged
    AFTER UPDATE OF revoked_at ON tokens
    FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
    EXECUTE FUNCTION revoke_exchanged_tokens();

-- The view lists the clients' columns as they were when it was made: made again to carry the
-- two new ones (the definition is 0010's).
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
       t.auth_time,
       t.audience,
       t.actors
FROM tokens t
JOIN clients c ON c.client_id = t.client_id
LEFT JOIN users u ON u.user_id = t.user_id;
