DROP TABLE refresh_tokens;
DROP TABLE sessions;
DROP INDEX users_email_key_idx;
ALTER TABLE users DROP COLUMN email_key;
ALTER TABLE users DROP COLUMN tokens_valid_after;
