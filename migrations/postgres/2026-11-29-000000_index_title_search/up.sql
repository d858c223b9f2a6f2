-- Title search (`lower(title) LIKE '%...%'`) through a trigram index, so a
-- search costs what its matches cost rather than a scan of every post.
-- pg_trgm is a trusted extension shipped in PostgreSQL's contrib package.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- fastupdate off: a new title goes straight into the index instead of a
-- pending list that every search must also read until a vacuum merges it.
CREATE INDEX posts_title_trgm_idx ON posts USING gin (lower(title) gin_trgm_ops)
    WITH (fastupdate = off);
