-- Every replica answers introspection of an active access token from memory
-- (authserver/db/token_cache.py); these triggers tell them all when such an answer stops being
-- true, whatever made the change: RFC 7009 revocation, a revoked family or grant, a password
-- change, a disabled or deleted client or user (by cascade), developer-token regeneration.
-- Payloads: 't' and the token digest in hex; 'u' or 'c' and a user or client id, whose tokens
-- are all dropped; '*' to drop everything (an id too long for a notification, never expected).
-- Tokens that are already revoked or expired notify nothing: no replica holds them, so the
-- janitor's purges of expired rows cost no notification.

CREATE FUNCTION notify_token_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed text;
BEGIN
    IF TG_TABLE_NAME = 'tokens' THEN
        changed := 't' || encode(OLD.digest, 'hex');
    ELSIF TG_TABLE_NAME = 'users' THEN
        changed := 'u' || OLD.user_id;
    ELSE
        changed := 'c' || OLD.client_id;
    END IF;
    IF octet_length(changed) > 7000 THEN  -- NOTIFY refuses payloads of 8000 bytes
        changed := '*';
    END IF;
    PERFORM pg_notify('authserver_token_changed', changed);
    RETURN NULL;
END;
$$;

-- Access tokens only: a refresh token is never active at introspection, so none is cached.
CREATE TRIGGER tokens_changed AFTER UPDATE ON tokens
    FOR EACH ROW
    WHEN (OLD.kind = 'access' AND OLD.revoked_at IS NULL AND OLD.* IS DISTINCT FROM NEW.*)
    EXECUTE FUNCTION notify_token_changed();
CREATE TRIGGER tokens_deleted AFTER DELETE ON tokens
    FOR EACH ROW
    WHEN (OLD.kind = 'access' AND OLD.revoked_at IS NULL
          AND (OLD.expires_at IS NULL OR OLD.expires_at > now()))
    EXECUTE FUNCTION notify_token_changed();
-- Introspection answers the user's login as "username", and only a live client's tokens.
CREATE TRIGGER users_login_changed AFTER UPDATE ON users
    FOR EACH ROW WHEN (OLD.login IS DISTINCT FROM NEW.login)
    EXECUTE FUNCTION notify_token_changed();
CREATE TRIGGER clients_deactivated AFTER UPDATE ON clients
    FOR EACH ROW WHEN (OLD.active AND NOT NEW.active)
    EXECUTE FUNCTION notify_token_changed();
