-- Lifecycle events in one total order, webhooks that receive them, and retention jobs.
--
-- `position` is given by the event sequencer after the event's transaction committed, so
-- a feed read `WHERE position > cursor` never skips an event that commits late. It stays
-- NULL for the timeline kinds that are not lifecycle events.
ALTER TABLE deployment_events ADD COLUMN position INTEGER;
CREATE UNIQUE INDEX deployment_events_position ON deployment_events (position);
-- The sequencer's work list; the WHERE must match its text for SQLite to use it.
CREATE INDEX deployment_events_unsequenced ON deployment_events (deployment_id, seq)
    WHERE position IS NULL AND kind IN ('requested', 'approval_started', 'approval_completed',
        'pre_deployment_started', 'pre_deployment_completed', 'deployment_started',
        'deployment_completed');

-- The last position given, kept apart from the events so that deleting the newest events
-- never lets a position be given twice.
CREATE TABLE event_sequence (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    last_position INTEGER NOT NULL
);
INSERT INTO event_sequence (id, last_position) VALUES (1, 0);

-- Retention walks finished deployments oldest first.
CREATE INDEX deployments_finished ON deployments (finished_at, id)
    WHERE finished_at IS NOT NULL;

-- `document` is the WebhookRecord as JSON; the signing secret lives only in its column.
CREATE TABLE webhooks (
    id       TEXT PRIMARY KEY,
    secret   TEXT NOT NULL,
    document TEXT NOT NULL
);

-- One event for one webhook. `payload` is the body as first sent, so that a redelivery
-- sends the same bytes even after retention deleted the deployment.
CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY,
    webhook_id       TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    position         INTEGER NOT NULL,
    event            TEXT NOT NULL,
    deployment_id    TEXT NOT NULL,
    payload          TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL,
    next_attempt_at  INTEGER,
    give_up_at       INTEGER NOT NULL,
    last_status_code INTEGER,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    UNIQUE (webhook_id, position)
);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, id);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at, id)
    WHERE status = 'pending';

CREATE TABLE webhook_attempts (
    delivery_id TEXT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    status_code INTEGER,
    error       TEXT,
    duration_ms INTEGER NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);

-- `document` is the RetentionJob as JSON; `next_run_at` is its durable timer.
CREATE TABLE retention_jobs (
    id          TEXT PRIMARY KEY,
    next_run_at INTEGER,
    lease_until INTEGER,
    document    TEXT NOT NULL
);
CREATE INDEX retention_jobs_due ON retention_jobs (next_run_at);

-- The audit log's own retention is one explicit admin call (POST /api/v1/audit/retention),
-- which opens this permit inside its own transaction; nothing else may delete a line.
CREATE TABLE audit_retention_permit (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    open INTEGER NOT NULL
);
INSERT INTO audit_retention_permit (id, open) VALUES (1, 0);
DROP TRIGGER audit_log_no_delete;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
WHEN (SELECT open FROM audit_retention_permit WHERE id = 1) = 0
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
