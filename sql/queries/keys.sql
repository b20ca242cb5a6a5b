-- name: published_signing_keys
-- The signing keys still published (not expired), newest first, with the database's clock.
SELECT kid, alg, public_jwk::text AS public_jwk, private_jwk, key_id, created_at, active_from,
       retired_at, expires_at, now() AS now
FROM signing_keys
WHERE expires_at IS NULL OR expires_at > now()
ORDER BY active_from DESC, created_at DESC;

-- name: lock_signing_keys
-- Rotations take turns, whichever replica or command runs them.
SELECT pg_advisory_xact_lock(7074826053124153858);

-- name: insert_signing_keys
-- New keys, one per element of the arrays $1 to $5: they sign from $6 seconds from now.
INSERT INTO signing_keys (kid, alg, public_jwk, private_jwk, key_id, active_from)
SELECT kid, alg, public_jwk::jsonb, private_jwk, key_id,
       now() + make_interval(secs => $6::double precision)
FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::text[])
     AS new (kid, alg, public_jwk, private_jwk, key_id);

-- name: retire_signing_keys
-- The keys that sign now stop when the new ones start ($1 seconds from now) and stay published
-- $2 seconds more, until every token they signed has expired.
UPDATE signing_keys
SET retired_at = now() + make_interval(secs => $1::double precision),
    expires_at = now() + make_interval(secs => $1::double precision + $2::double precision)
WHERE retired_at IS NULL;

-- name: purge_signing_keys
-- Up to $1 keys no longer published.
DELETE FROM signing_keys WHERE kid IN (
    SELECT kid FROM signing_keys WHERE expires_at < now() LIMIT $1);
