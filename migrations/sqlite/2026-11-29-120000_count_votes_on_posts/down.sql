DROP TRIGGER votes_count_after_update;
DROP TRIGGER votes_count_after_delete;
DROP TRIGGER votes_count_after_insert;
ALTER TABLE posts DROP COLUMN vote_count;
