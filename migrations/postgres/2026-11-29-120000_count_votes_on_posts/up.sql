-- Each post carries its vote count, kept by a trigger on votes in the same
-- transaction as the vote. A page then reads counts from its own rows: no
-- per-post count of votes, a subplan PostgreSQL re-plans with every page
-- (LIMIT is a parameter) and runs as a scan while votes is small or not yet
-- vacuumed.
ALTER TABLE posts ADD COLUMN vote_count BIGINT NOT NULL DEFAULT 0;

UPDATE posts SET vote_count = counted.votes
FROM (SELECT post_id, count(*) AS votes FROM votes GROUP BY post_id) AS counted
WHERE counted.post_id = posts.id;

CREATE FUNCTION posts_count_votes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE posts SET vote_count = vote_count - 1 WHERE id = OLD.post_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        UPDATE posts SET vote_count = vote_count + 1 WHERE id = NEW.post_id;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER votes_count_on_posts
    AFTER INSERT OR DELETE OR UPDATE OF post_id ON votes
    FOR EACH ROW EXECUTE FUNCTION posts_count_votes();
