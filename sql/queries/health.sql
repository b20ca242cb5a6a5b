-- name: ping
-- The cheapest round trip: is the database there?
SELECT 1;
