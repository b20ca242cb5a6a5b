-- name: ping
-- The cheapest round trip that says whether the database takes writes (a replica after a
-- failover, or a server put in read-only mode, does not: the service is not ready then).
SELECT current_setting('transaction_read_only') = 'off';
