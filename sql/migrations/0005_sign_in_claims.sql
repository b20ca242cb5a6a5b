-- Sign-in attempts are claimed before a password is checked. One call counts an attempt
-- against every key it is given (the account and the client address), or counts nothing and
-- says how long the pause lasts when any of them is paused. Claims on a key are serialized by
-- its row lock, so concurrent attempts cannot overrun a limit (checklist R-05): the attempt
-- that reaches a key's limit starts the pause, whatever its outcome turns out to be, and a
-- right password then gives its attempt back (release_attempt).
CREATE FUNCTION claim_attempts(keys text[], limits integer[], window_secs double precision)
RETURNS double precision
LANGUAGE plpgsql AS $$
DECLARE
    paused_for double precision;
    span interval := make_interval(secs => window_secs);
BEGIN
    INSERT INTO login_failures (throttle_key, failures, window_start, expires_at)
    SELECT k, 0, now(), now() + span FROM unnest(keys) AS k ORDER BY k
    ON CONFLICT (throttle_key) DO NOTHING;
    -- Locked in one order by every caller: two claims sharing keys cannot deadlock.
    PERFORM 1 FROM login_failures WHERE throttle_key = ANY (keys)
    ORDER BY throttle_key FOR UPDATE;
    SELECT max(extract(epoch FROM locked_until - now())) INTO paused_for
    FROM login_failures WHERE throttle_key = ANY (keys) AND locked_until > now();
    IF paused_for IS NOT NULL THEN
        RETURN paused_for;
    END IF;
    UPDATE login_failures AS f SET
        failures = n.failures,
        window_start = n.window_start,
        locked_until = CASE WHEN n.failures >= n.max_failures THEN now() + span END,
        expires_at = now() + span
    FROM (
        SELECT g.throttle_key, w.max_failures,
               CASE WHEN g.window_start + span < now() THEN 1 ELSE g.failures + 1 END AS failures,
               CASE WHEN g.window_start + span < now() THEN now() ELSE g.window_start END
                   AS window_start
        FROM login_failures g
        JOIN unnest(keys, limits) AS w(throttle_key, max_failures) USING (throttle_key)
    ) AS n
    WHERE f.throttle_key = n.throttle_key;
    RETURN NULL;
END;
$$;
