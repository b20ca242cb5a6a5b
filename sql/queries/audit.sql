-- name: insert_audit_event
-- Record a security-relevant event.
INSERT INTO audit_events (kind, client_id, user_id, detail) VALUES ($1, $2, $3, $4);
