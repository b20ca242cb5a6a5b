-- name: insert_device_code
-- Store a device authorization request by the digests of its codes ($1 device, $2 user) for a
-- client ($3) and scope ($4), living $5 seconds, polled every $6 seconds at most; no row back
-- when the user code is taken (the caller draws another).
INSERT INTO device_codes (digest, user_code_digest, client_id, scope, expires_at, poll_interval)
VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5::double precision), $6)
ON CONFLICT (user_code_digest) DO NOTHING
RETURNING digest;

-- name: poll_device_code
-- A client ($2) polls with its device code ($1): the poll is stamped, and one that comes sooner
-- than the interval allows while the user has not decided adds 5 s to it (RFC 8628 §3.5).
-- Half a second of slack: the stamp is taken when the request is served, not when it was sent.
UPDATE device_codes d SET
    last_polled_at = now(),
    poll_interval = CASE WHEN p.too_fast THEN least(d.poll_interval + 5, 3600)
                         ELSE d.poll_interval END
FROM (
    SELECT digest, status = 'pending' AND expires_at > now() AND last_polled_at IS NOT NULL
               AND last_polled_at > now() - make_interval(secs => poll_interval::double precision - 0.5) AS too_fast
    FROM device_codes WHERE digest = $1 AND client_id = $2
    FOR NO KEY UPDATE
) p
WHERE d.digest = p.digest
RETURNING d.digest, d.client_id, d.scope, d.status, d.user_id, d.grant_id, d.auth_time,
          d.consumed_at IS NOT NULL AS consumed, d.expires_at > now() AS live, p.too_fast,
          d.poll_interval;

-- name: pending_device
-- The device waiting for a decision under a user code (its digest under any server key, $1).
SELECT digest, client_id, scope FROM device_codes
WHERE user_code_digest = ANY($1::bytea[]) AND status = 'pending' AND expires_at > now()
LIMIT 1;

-- name: decide_device
-- The user's decision on a pending device ($1): approved under grant $4 for user $2 signed in
-- at $5, or denied ($3 false, no grant); no row back when it was already decided or expired.
UPDATE device_codes SET
    status = CASE WHEN $3::boolean THEN 'approved' ELSE 'denied' END,
    user_id = $2, grant_id = $4, auth_time = $5, decided_at = now()
WHERE digest = $1 AND status = 'pending' AND expires_at > now()
RETURNING digest;

-- name: claim_device_code
-- Redeem an approved device code; no row back means it was already redeemed (or expired).
UPDATE device_codes SET consumed_at = now()
WHERE digest = $1 AND status = 'approved' AND consumed_at IS NULL AND expires_at > now()
RETURNING grant_id;

-- name: delete_unredeemed_device_codes_of_user
-- Device codes of a user not redeemed yet never will be (a password change or reset).
DELETE FROM device_codes WHERE user_id = $1 AND consumed_at IS NULL;

-- name: delete_unredeemed_device_codes_of_client
-- Device codes of a client not redeemed yet never will be (the client was disabled).
DELETE FROM device_codes WHERE client_id = $1 AND consumed_at IS NULL;

-- name: device_grant_enabled
-- Whether any active application may use the device grant (the metadata advertises it then).
SELECT EXISTS (SELECT 1 FROM clients WHERE device_grant AND active);
