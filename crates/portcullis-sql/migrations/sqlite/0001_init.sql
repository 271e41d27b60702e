-- Portcullis schema, version 1 (SQLite).
-- Times are unix seconds; hashes are 32-byte SHA-256 BLOBs; permissions are the u128 bitset
-- as decimal TEXT (SQLite's INTEGER is only 64 bits). Booleans are 0/1.

CREATE TABLE users (
    id            TEXT    NOT NULL PRIMARY KEY,
    email         TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL,
    org_id        TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL
);
CREATE UNIQUE INDEX users_email_key ON users (email);

CREATE TABLE api_keys (
    id                    TEXT    NOT NULL PRIMARY KEY,
    name                  TEXT    NOT NULL,
    key_hash              BLOB    NOT NULL CHECK (length(key_hash) = 32),
    display_prefix        TEXT    NOT NULL,
    created_by            TEXT    NOT NULL,
    owner_kind            TEXT    NOT NULL CHECK (owner_kind IN ('user', 'agent')),
    owner_id              TEXT    NOT NULL,
    org_id                TEXT    NOT NULL,
    permissions           TEXT    NOT NULL,
    created_at            BIGINT  NOT NULL,
    expires_at            BIGINT,
    enabled               BOOLEAN NOT NULL,
    rate_limit_per_minute BIGINT,
    last_used_at          BIGINT
);
CREATE UNIQUE INDEX api_keys_key_hash_key ON api_keys (key_hash);
CREATE INDEX api_keys_owner_idx ON api_keys (owner_kind, owner_id, created_at);

-- `version` goes up by one on every write: refresh rotation compares and swaps on it.
CREATE TABLE sessions (
    id           TEXT    NOT NULL PRIMARY KEY,
    user_id      TEXT    NOT NULL,
    org_id       TEXT    NOT NULL,
    current_hash BLOB    NOT NULL CHECK (length(current_hash) = 32),
    parent_hash  BLOB             CHECK (parent_hash IS NULL OR length(parent_hash) = 32),
    rotated_at   BIGINT  NOT NULL,
    created_at   BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL,
    remember_me  BOOLEAN NOT NULL,
    revoked      BOOLEAN NOT NULL,
    version      BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

CREATE TABLE agents (
    id         TEXT   NOT NULL PRIMARY KEY,
    org_id     TEXT   NOT NULL,
    name       TEXT   NOT NULL,
    status     TEXT   NOT NULL CHECK (status IN ('active', 'terminated')),
    created_at BIGINT NOT NULL
);

CREATE TABLE denied_tokens (
    jti        TEXT   NOT NULL PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX denied_tokens_expires_idx ON denied_tokens (expires_at);
