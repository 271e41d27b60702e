-- Portcullis schema, version 4: rerolling an API key (a new secret for the same key id).
-- The secret it replaced keeps working until `previous_hash_expires_at` (the overlap the caller
-- asked for), so that clients can move to the new one; only the newest replaced secret is kept.
ALTER TABLE api_keys ADD COLUMN previous_hash BYTEA CHECK (previous_hash IS NULL OR octet_length(previous_hash) = 32);
ALTER TABLE api_keys ADD COLUMN previous_hash_expires_at BIGINT;
CREATE INDEX api_keys_previous_hash_idx ON api_keys (previous_hash);
