-- name: insert_audit_event
-- Record a security-relevant event.
INSERT INTO audit_events (kind, client_id, user_id, detail) VALUES ($1, $2, $3, $4);

-- name: list_audit_events
-- Audit events newest first, filtered by user ($1), client ($2), kind ($3), time range [$4, $5)
-- and a cursor (event ids below $6), at most $7.
SELECT event_id, occurred_at, kind, client_id, user_id, detail::text AS detail
FROM audit_events
WHERE ($1::text IS NULL OR user_id = $1)
  AND ($2::text IS NULL OR client_id = $2)
  AND ($3::text IS NULL OR kind = $3)
  AND ($4::timestamptz IS NULL OR occurred_at >= $4)
  AND ($5::timestamptz IS NULL OR occurred_at < $5)
  AND ($6::bigint IS NULL OR event_id < $6)
ORDER BY event_id DESC
LIMIT $7;
