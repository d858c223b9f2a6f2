-- The title search index again, without `contentless_delete` (an option of
-- SQLite 3.43): with it in the schema, SQLite before 3.43 (Debian 12's 3.40,
-- the sqlite3 shell and Python's sqlite3 there) fails every write to posts
-- with `unrecognized option: "contentless_delete"`. This table takes only
-- options of SQLite 3.34 (the trigram tokenizer's release).
--
-- The same index: FTS5 trigrams of lower(title), where lower() is the
-- application's Unicode one, so search answers do not change. Unlike the
-- contentless table, this one keeps its own copy of what it indexed
-- (lower(title), in posts_search_content), so a row is deleted by rowid
-- alone, with exactly the trigrams it was indexed under. An external-content
-- table (content = 'posts') cannot: it indexes posts.title itself, which is
-- not lower(title) (İ lower-cases to two characters, 'i' and a combining dot
-- above, that FTS5's own case folding does not make), and its deletes must be
-- handed the indexed text again, which a connection without the
-- application's lower() (any other tool's) computes differently for some
-- 400 upper-case letters, leaving stale trigrams behind.
DROP TRIGGER posts_search_after_delete;
DROP TRIGGER posts_search_after_update;
DROP TRIGGER posts_search_after_insert;
DROP TABLE posts_search;

CREATE VIRTUAL TABLE posts_search USING fts5 (
    title,
    tokenize = 'trigram case_sensitive 0'
);

INSERT INTO posts_search (rowid, title) SELECT id, lower(title) FROM posts;

CREATE TRIGGER posts_search_after_insert AFTER INSERT ON posts BEGIN
    INSERT INTO posts_search (rowid, title) VALUES (new.id, lower(new.title));
END;

-- Not on vote_count: a vote's count update leaves the index alone.
CREATE TRIGGER posts_search_after_update AFTER UPDATE OF id, title ON posts BEGIN
    DELETE FROM posts_search WHERE rowid = old.id;
    INSERT INTO posts_search (rowid, title) VALUES (new.id, lower(new.title));
END;

CREATE TRIGGER posts_search_after_delete AFTER DELETE ON posts BEGIN
    DELETE FROM posts_search WHERE rowid = old.id;
END;
