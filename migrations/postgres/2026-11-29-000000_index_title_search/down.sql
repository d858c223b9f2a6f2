DROP INDEX posts_title_trgm_idx;
-- The extension stays: other objects in the database may use it.
