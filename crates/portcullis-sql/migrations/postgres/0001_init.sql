-- Portcullis schema, version 1 (PostgreSQL).
-- Times are unix seconds; hashes are 32-byte SHA-256 BYTEA; permissions are the u128 bitset
-- as decimal TEXT (as on SQLite, so that both backends share their queries).
-- Ids use the "C" collation so that ordering by id is bytewise, as on SQLite.

CREATE TABLE users (
    id            TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    email         TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL,
    org_id        TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL
);
CREATE UNIQUE INDEX users_email_key ON users (email);

CREATE TABLE api_keys (
    id                    TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    name                  TEXT    NOT NULL,
    key_hash              BYTEA   NOT NULL CHECK (octet_length(key_hash) = 32),
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
    id           TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    user_id      TEXT    NOT NULL,
    org_id       TEXT    NOT NULL,
    current_hash BYTEA   NOT NULL CHECK (octet_length(current_hash) = 32),
    parent_hash  BYTEA            CHECK (parent_hash IS NULL OR octet_length(parent_hash) = 32),
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
    id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
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
