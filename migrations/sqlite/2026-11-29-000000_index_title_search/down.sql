DROP TRIGGER posts_search_after_delete;
DROP TRIGGER posts_search_after_update;
DROP TRIGGER posts_search_after_insert;
DROP TABLE posts_search;
