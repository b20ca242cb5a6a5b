-- name: janitor_try_lock
-- Only one replica cleans at a time; the others skip their turn.
SELECT pg_try_advisory_lock($1);

-- name: janitor_unlock
-- Let the next run, on any replica, take its turn.
SELECT pg_advisory_unlock($1);

-- name: purge_tokens
-- Up to $1 expired tokens whose family has nothing live left: refresh-token reuse detection
-- needs the rotated-out members of a family for as long as any of it can still be used.
DELETE FROM tokens WHERE digest IN (
    SELECT t.digest FROM tokens t
    WHERE t.expires_at < now()
      AND (t.family_id IS NULL OR NOT EXISTS (
          SELECT 1 FROM tokens live
          WHERE live.family_id = t.family_id AND live.expires_at >= now()))
    LIMIT $1);

-- name: purge_codes
-- Up to $1 codes expired more than an hour ago; until then a replay is still recognised.
DELETE FROM authorization_codes WHERE digest IN (
    SELECT digest FROM authorization_codes
    WHERE expires_at < now() - interval '1 hour'
    LIMIT $1);

-- name: purge_device_codes
-- Up to $1 device codes expired more than an hour ago; until then a late poll is still told
-- expired_token (RFC 8628 §3.5) rather than invalid_grant.
DELETE FROM device_codes WHERE digest IN (
    SELECT digest FROM device_codes
    WHERE expires_at < now() - interval '1 hour'
    LIMIT $1);

-- name: purge_client_secrets
-- Up to $1 client secrets whose rotation overlap has ended.
DELETE FROM client_secrets WHERE secret_id IN (
    SELECT secret_id FROM client_secrets WHERE expires_at < now() LIMIT $1);

-- name: purge_sessions
-- Up to $1 browser sessions past their lifetime.
DELETE FROM browser_sessions WHERE sid_digest IN (
    SELECT sid_digest FROM browser_sessions WHERE expires_at < now() LIMIT $1);

-- name: purge_login_failures
-- Up to $1 failed-login counters whose window has passed.
DELETE FROM login_failures WHERE throttle_key IN (
    SELECT throttle_key FROM login_failures WHERE expires_at < now() LIMIT $1);

-- name: purge_consent_nonces
-- Up to $1 consent-form nonces whose form has expired.
DELETE FROM consent_nonces WHERE nonce IN (
    SELECT nonce FROM consent_nonces WHERE expires_at < now() LIMIT $1);

-- name: purge_revoked_grants
-- Up to $1 grants revoked longer ago than the audit retention of $2 seconds.
DELETE FROM grants WHERE grant_id IN (
    SELECT grant_id FROM grants
    WHERE revoked_at < now() - make_interval(secs => $2::double precision)
    LIMIT $1);

-- name: purge_audit_events
-- Up to $1 audit events older than the retention of $2 seconds.
DELETE FROM audit_events WHERE event_id IN (
    SELECT event_id FROM audit_events
    WHERE occurred_at < now() - make_interval(secs => $2::double precision)
    LIMIT $1);

-- name: purge_client_failures
-- Up to $1 client failure counters whose window has passed.
DELETE FROM client_failures WHERE (client_id, kind, address) IN (
    SELECT client_id, kind, address FROM client_failures WHERE expires_at < now() LIMIT $1);
