-- Back to the contentless table of 2026-11-29-000000_index_title_search
-- (SQLite 3.43 or later again).
DROP TRIGGER posts_search_after_delete;
DROP TRIGGER posts_search_after_update;
DROP TRIGGER posts_search_after_insert;
DROP TABLE posts_search;

CREATE VIRTUAL TABLE posts_search USING fts5 (
    title,
    content = '',
    contentless_delete = 1,
    tokenize = 'trigram case_sensitive 0'
);

INSERT INTO posts_search (rowid, title) SELECT id, lower(title) FROM posts;

CREATE TRIGGER posts_search_after_insert AFTER INSERT ON posts BEGIN
    INSERT INTO posts_search (rowid, title) VALUES (new.id, lower(new.title));
END;

CREATE TRIGGER posts_search_after_update AFTER UPDATE OF title ON posts BEGIN
    DELETE FROM posts_search WHERE rowid = old.id;
    INSERT INTO posts_search (rowid, title) VALUES (new.id, lower(new.title));
END;

CREATE TRIGGER posts_search_after_delete AFTER DELETE ON posts BEGIN
    DELETE FROM posts_search WHERE rowid = old.id;
END;
