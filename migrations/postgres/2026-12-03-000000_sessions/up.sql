-- Sessions: one per successful login, kept alive by rotating refresh tokens
-- (docs/architecture.md, "Sessions"). Times are UTC wall-clock values the
-- application writes, from its clock.

-- Tokens without a session id (minted by the course app) issued at or
-- before this instant are refused: set by logout-all and password changes.
ALTER TABLE users ADD COLUMN tokens_valid_after TIMESTAMP;

-- What look-alike addresses share (docs/architecture.md), where it is not
-- the address itself: NULL for every ASCII address, so rows written by other
-- tools (the course app) need not know of it. Unique with the addresses, so
-- two accounts cannot read the same.
ALTER TABLE users ADD COLUMN email_key TEXT;
CREATE UNIQUE INDEX users_email_key_idx ON users ((COALESCE(email_key, email)));

CREATE TABLE sessions (
    id SERIAL PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    -- The last login or refresh: requests do not write.
    last_used_at TIMESTAMP NOT NULL,
    -- When its refresh token stops working; a refresh moves it on.
    expires_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP,
    user_agent TEXT,
    client_addr TEXT
);

-- A user's sessions (listing, the cap, the cascade); what the background
-- cleanup deletes.
CREATE INDEX sessions_user_id_idx ON sessions (user_id, id);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);
CREATE INDEX sessions_revoked_at_idx ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;

CREATE TABLE refresh_tokens (
    -- SHA-256 of the token, in hex: the token itself is never stored.
    token_hash TEXT PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    expires_at TIMESTAMP NOT NULL,
    -- Set when it is traded for a new pair; presenting it again revokes
    -- the session.
    spent_at TIMESTAMP
);

CREATE INDEX refresh_tokens_session_id_idx ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_expires_at_idx ON refresh_tokens (expires_at);
