-- The admin API lists audit events by user or by client, newest first (GET /audit).
CREATE INDEX audit_events_user_idx ON audit_events (user_id, event_id) WHERE user_id IS NOT NULL;
CREATE INDEX audit_events_client_idx ON audit_events (client_id, event_id)
    WHERE client_id IS NOT NULL;
