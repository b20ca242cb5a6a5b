-- Every replica caches what client authentication reads (the client_auth view); these
-- triggers tell them all when a client, its secrets or its authentication pause change,
-- whatever made the change: admin API, CLI, a cascade from a deleted user, the janitor.

CREATE FUNCTION notify_client_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed text;
BEGIN
    IF TG_TABLE_NAME = 'login_failures' THEN
        changed := CASE WHEN TG_OP = 'DELETE' THEN OLD.throttle_key ELSE NEW.throttle_key END;
        IF changed NOT LIKE 'client:%' THEN
            RETURN NULL;
        END IF;
        changed := substr(changed, length('client:') + 1);
    ELSE
        changed := CASE WHEN TG_OP = 'DELETE' THEN OLD.client_id ELSE NEW.client_id END;
    END IF;
    PERFORM pg_notify('authserver_client_changed', changed);
    RETURN NULL;
END;
$$;

CREATE TRIGGER clients_changed AFTER UPDATE OR DELETE ON clients
    FOR EACH ROW EXECUTE FUNCTION notify_client_changed();
CREATE TRIGGER client_secrets_changed AFTER INSERT OR UPDATE OR DELETE ON client_secrets
    FOR EACH ROW EXECUTE FUNCTION notify_client_changed();
CREATE TRIGGER client_pauses_changed AFTER INSERT OR UPDATE OR DELETE ON login_failures
    FOR EACH ROW EXECUTE FUNCTION notify_client_changed();
