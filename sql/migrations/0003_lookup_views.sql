-- The two lookups on the hot paths, as views: what client authentication reads, and what
-- introspection and the refresh grant read about a token.

-- A client with the digests of its valid secrets and whether failed authentications have
-- paused it (checklist S-29). The *_in columns say, in seconds from now, when the first of
-- those facts changes by itself, so a cached copy knows when it goes stale without a write.
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
       (SELECT extract(epoch FROM f.locked_until - now())::float8 FROM login_failures f
        WHERE f.throttle_key = 'client:' || c.client_id AND f.locked_until > now())
           AS auth_locked_for
FROM clients c;

-- A token with what introspection answers and what the refresh grant checks, judged by the
-- database clock.
CREATE VIEW token_status AS
SELECT t.digest, t.kind, t.client_id, t.user_id, t.grant_id, t.family_id, t.scope, t.developer,
       t.created_at, t.expires_at, u.login AS username,
       t.consumed_at IS NOT NULL AS consumed,
       t.revoked_at IS NOT NULL AS revoked,
       (t.expires_at IS NULL OR t.expires_at > now()) AS live,
       c.active AS client_active
FROM tokens t
JOIN clients c ON c.client_id = t.client_id
LEFT JOIN users u ON u.user_id = t.user_id;
