-- Title search through an FTS5 trigram index. It holds lower(title) as the
-- application's lower() folds it (the Unicode one registered on every
-- connection), so candidates it yields are a superset of the exact
-- `lower(title) LIKE lower(pattern)` matches the query still filters on.
-- Contentless: it stores only the index, and rows are deleted by rowid.
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
