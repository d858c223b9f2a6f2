-- Each post carries its vote count, kept by triggers on votes in the same
-- transaction as the vote, so a page reads counts from its own rows instead
-- of counting each post's votes (as migrations/postgres does).
ALTER TABLE posts ADD COLUMN vote_count BIGINT NOT NULL DEFAULT 0;

UPDATE posts SET vote_count = (SELECT count(*) FROM votes WHERE votes.post_id = posts.id);

CREATE TRIGGER votes_count_after_insert AFTER INSERT ON votes BEGIN
    UPDATE posts SET vote_count = vote_count + 1 WHERE id = new.post_id;
END;

CREATE TRIGGER votes_count_after_delete AFTER DELETE ON votes BEGIN
    UPDATE posts SET vote_count = vote_count - 1 WHERE id = old.post_id;
END;

CREATE TRIGGER votes_count_after_update AFTER UPDATE OF post_id ON votes BEGIN
    UPDATE posts SET vote_count = vote_count - 1 WHERE id = old.post_id;
    UPDATE posts SET vote_count = vote_count + 1 WHERE id = new.post_id;
END;
