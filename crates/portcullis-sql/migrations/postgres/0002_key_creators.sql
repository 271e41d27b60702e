-- Portcullis schema, version 2: who made each API key, for "an actor manages the keys it made".
-- `created_by` now names the creating actor (a user, an API key, an agent or `board`);
-- `creator_user` the user behind it (a user, or the owner of the user's key that made it).
-- Until now `created_by` always held the user who asked, so existing rows keep that user.
ALTER TABLE api_keys ADD COLUMN creator_user TEXT;
UPDATE api_keys SET creator_user = created_by;
CREATE INDEX api_keys_created_by_idx ON api_keys (created_by, created_at);
CREATE INDEX api_keys_creator_user_idx ON api_keys (creator_user, created_at);
-- Stats count per org.
CREATE INDEX api_keys_org_idx ON api_keys (org_id);
CREATE INDEX users_org_idx ON users (org_id);
CREATE INDEX agents_org_idx ON agents (org_id);
CREATE INDEX sessions_org_idx ON sessions (org_id, expires_at);
