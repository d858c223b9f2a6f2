DROP TRIGGER votes_count_on_posts ON votes;
DROP FUNCTION posts_count_votes();
ALTER TABLE posts DROP COLUMN vote_count;
