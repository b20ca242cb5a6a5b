-- name: claim_attempts
-- Count a sign-in attempt against every key ($1, with its limit in $2, within a window of $3
-- seconds) before the password is checked; NULL when counted, else seconds the pause lasts.
SELECT claim_attempts($1::text[], $2::integer[], $3::double precision);

-- name: release_attempt
-- A right password: the account's ($1) count starts over, and the address ($2, limit $3) gets
-- back the attempt it was charged.
WITH cleared AS (
    DELETE FROM login_failures WHERE throttle_key = $1
)
UPDATE login_failures SET
    failures = greatest(failures - 1, 0),
    locked_until = CASE WHEN failures - 1 >= $3 THEN locked_until END
WHERE throttle_key = $2;

-- name: record_client_failures
-- Count failures of clients ($1 client, $2 kind, $3 address, $4 how many, $5 the limit) within a
-- window of $6 seconds; a counter that reaches its limit pauses for the window. Clients deleted
-- meanwhile are skipped.
INSERT INTO client_failures AS f (client_id, kind, address, failures, max_failures,
                                  window_start, locked_until, expires_at)
SELECT n.client_id, n.kind, n.address, n.failures, n.max_failures, now(),
       CASE WHEN n.failures >= n.max_failures THEN now() + make_interval(secs => $6) END,
       now() + make_interval(secs => $6)
FROM unnest($1::text[], $2::text[], $3::text[], $4::integer[], $5::integer[])
     AS n(client_id, kind, address, failures, max_failures)
WHERE EXISTS (SELECT 1 FROM clients c WHERE c.client_id = n.client_id)
ON CONFLICT (client_id, kind, address) DO UPDATE SET
    failures = CASE WHEN f.window_start + make_interval(secs => $6) < now() THEN EXCLUDED.failures
                    ELSE f.failures + EXCLUDED.failures END,
    max_failures = EXCLUDED.max_failures,
    window_start = CASE WHEN f.window_start + make_interval(secs => $6) < now() THEN now()
                        ELSE f.window_start END,
    locked_until = CASE
        WHEN f.window_start + make_interval(secs => $6) < now() THEN EXCLUDED.locked_until
        WHEN f.failures + EXCLUDED.failures >= EXCLUDED.max_failures
            THEN coalesce(f.locked_until, now() + make_interval(secs => $6))
        ELSE f.locked_until END,
    expires_at = now() + make_interval(secs => $6);

-- name: client_paused_for
-- Seconds left of a client's pause of one kind from one address ($1, $2, $3), or none.
SELECT extract(epoch FROM locked_until - now())::float8 FROM client_failures
WHERE client_id = $1 AND kind = $2 AND address = $3 AND locked_until > now();

-- name: give_back_attempt
-- An attempt that turned out right gives its key ($1, limit $2) back the attempt it was charged.
UPDATE login_failures SET
    failures = greatest(failures - 1, 0),
    locked_until = CASE WHEN failures - 1 >= $2 THEN locked_until END
WHERE throttle_key = $1;
