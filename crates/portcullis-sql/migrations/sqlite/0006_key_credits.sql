-- Portcullis schema, version 6: usage credits on API keys. `remaining` is the number of
-- requests the key may still make (NULL: unlimited); each request takes one with a single
-- conditional UPDATE (`remaining >= n`), so it never goes below zero, on any number of instances.
ALTER TABLE api_keys ADD COLUMN remaining BIGINT CHECK (remaining IS NULL OR remaining >= 0);
