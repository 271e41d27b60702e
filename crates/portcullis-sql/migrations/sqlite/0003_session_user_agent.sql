-- Portcullis schema, version 3: a user's own list of sessions (`GET /auth/sessions`).
-- `user_agent` is the client's `User-Agent` at login, cleaned (no control characters, at most
-- 256 characters); NULL when there was none, and for every session started before this version.
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
-- Listing one user's sessions, newest first.
CREATE INDEX sessions_user_created_idx ON sessions (user_id, created_at);
