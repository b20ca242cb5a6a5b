-- A user id and a client id never name the same string, so an introspection answer's `sub`
-- never names a client and a `client_id` never names a user (checklist S-49).
CREATE FUNCTION refuse_shared_identifier() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    id text;
    taken boolean;
BEGIN
    -- Each table's row is read in its own branch: NEW has only that table's columns.
    IF TG_TABLE_NAME = 'users' THEN
        id := NEW.user_id;
    ELSE
        id := NEW.client_id;
    END IF;
    -- Two transactions creating one identifier in the two tables take turns: the second sees
    -- the first's row once it is committed.
    PERFORM pg_advisory_xact_lock(hashtextextended('authserver-identifier:' || id, 0));
    IF TG_TABLE_NAME = 'users' THEN
        taken := EXISTS (SELECT 1 FROM clients WHERE client_id = id);
    ELSE
        taken := EXISTS (SELECT 1 FROM users WHERE user_id = id);
    END IF;
    IF taken THEN
        RAISE EXCEPTION 'the identifier is already used by the other table'
            USING ERRCODE = 'unique_violation', CONSTRAINT = 'identifier_shared';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER users_identifier BEFORE INSERT OR UPDATE OF user_id ON users
    FOR EACH ROW EXECUTE FUNCTION refuse_shared_identifier();
CREATE TRIGGER clients_identifier BEFORE INSERT OR UPDATE OF client_id ON clients
    FOR EACH ROW EXECUTE FUNCTION refuse_shared_identifier();
