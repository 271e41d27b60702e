-- Portcullis schema, version 5: the audit log (`GET /admin/audit`). One row per lifecycle
-- event, ids only (never a token, key or password). `org_id` NULL: an event of no org (a
-- refused login for an unknown email), seen only by those acting in every org. Rows older than
-- the retention (`PORTCULLIS_AUDIT_RETENTION_DAYS`) are pruned by the purge task.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time BIGINT NOT NULL,
    actor_id TEXT,
    actor_kind TEXT NOT NULL,
    org_id TEXT,
    action TEXT NOT NULL,
    target TEXT,
    outcome TEXT NOT NULL,
    request_id TEXT,
    client TEXT
);
-- One org's events, newest first (the route's query), and every org's, for the board.
CREATE INDEX audit_log_org_time_idx ON audit_log (org_id, time DESC, id DESC);
CREATE INDEX audit_log_time_idx ON audit_log (time DESC, id DESC);
