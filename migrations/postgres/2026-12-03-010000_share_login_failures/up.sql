-- Failed-login counts that every instance on this database shares, so N
-- instances behind a load balancer allow one limit, not N (docs/operations.md,
-- "Login throttling"; the statements are in src/db/login_failures.rs).
--
-- UNLOGGED: not written to the write-ahead log, so cheap to update, and
-- emptied after a crash, which only forgets recent failures. Not replicated
-- to standbys either: a promoted standby starts with no counts.
--
-- One row per client address as throttling counts it (an IPv4 address, or an
-- IPv6 /64 network), holding every attempt counted against it: a begin
-- checks both limits and records the attempt in one statement on one row,
-- so the row's lock makes parallel attempts, from any instance, take turns.
CREATE UNLOGGED TABLE login_failures (
    client TEXT PRIMARY KEY,
    -- The attempts, in parallel arrays, in the order they began.
    -- A random id per attempt, for its verdict to find it.
    attempt_ids BIGINT[] NOT NULL,
    -- A keyed hash of the account's normalised email (HMAC-SHA-256 under a
    -- key derived from SECRET_KEY, its first 8 bytes), never the email;
    -- NULL once a success from this client forgot its failures on the account.
    accounts BIGINT[] NOT NULL,
    -- When the attempt began, in milliseconds since the Unix epoch, by the
    -- application's clock.
    started_at BIGINT[] NOT NULL,
    -- True until its verdict comes.
    pending BOOLEAN[] NOT NULL,
    -- When nothing in the row counts any more (milliseconds, as started_at):
    -- what the cleanup deletes.
    expires_at BIGINT NOT NULL
);

CREATE INDEX login_failures_expires_at_idx ON login_failures (expires_at);
