-- Timestamps are UTC wall-clock values in TIMESTAMP columns (the application
-- writes them), so both backends store and return the same thing.

CREATE TABLE users (
    id SERIAL PRIMARY KEY,
    -- Stored trimmed and lower-cased by the application, so UNIQUE is
    -- case-insensitive in effect.
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')
);

CREATE TABLE posts (
    id SERIAL PRIMARY KEY,
    title TEXT NOT NULL,
    content TEXT NOT NULL,
    published BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    owner_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE
);

-- The listing is newest first; owner_id backs the cascade from users.
CREATE INDEX posts_created_at_id_idx ON posts (created_at DESC, id DESC);
CREATE INDEX posts_owner_id_idx ON posts (owner_id);

CREATE TABLE votes (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    post_id INTEGER NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, post_id)
);

-- Vote counts and the cascade from posts look votes up by post.
CREATE INDEX votes_post_id_idx ON votes (post_id);
