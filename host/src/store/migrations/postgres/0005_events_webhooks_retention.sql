-- Lifecycle events in one total order, webhooks that receive them, and retention jobs.
--
-- `position` is given by the event sequencer after the event's transaction committed, so
-- a feed read `WHERE position > cursor` never skips an event that commits late. It stays
-- NULL for the timeline kinds that are not lifecycle events.
ALTER TABLE deployment_events ADD COLUMN position BIGINT;
CREATE UNIQUE INDEX deployment_events_position ON deployment_events (position);
-- The sequencer's work list; partial, so it holds only the events still to number.
CREATE INDEX deployment_events_unsequenced ON deployment_events (deployment_id, seq)
    WHERE position IS NULL AND kind IN ('requested', 'approval_started', 'approval_completed',
        'pre_deployment_started', 'pre_deployment_completed', 'deployment_started',
        'deployment_completed');

-- The last position given, kept apart from the events so that deleting the newest events
-- never lets a position be given twice.
CREATE TABLE event_sequence (
    id            BIGINT PRIMARY KEY CHECK (id = 1),
    last_position BIGINT NOT NULL
);
INSERT INTO event_sequence (id, last_position) VALUES (1, 0);

-- Retention walks finished deployments oldest first.
CREATE INDEX deployments_finished ON deployments (finished_at, id)
    WHERE finished_at IS NOT NULL;

-- `document` is the WebhookRecord as JSON; the signing secret lives only in its column.
CREATE TABLE webhooks (
    id       TEXT COLLATE "C" PRIMARY KEY,
    secret   TEXT NOT NULL,
    document TEXT NOT NULL
);

-- One event for one webhook. `payload` is the body as first sent, so that a redelivery
-- sends the same bytes even after retention deleted the deployment.
CREATE TABLE webhook_deliveries (
    id               TEXT COLLATE "C" PRIMARY KEY,
    webhook_id       TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    position         BIGINT NOT NULL,
    event            TEXT NOT NULL,
    deployment_id    TEXT NOT NULL,
    payload          TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         BIGINT NOT NULL,
    next_attempt_at  BIGINT,
    give_up_at       BIGINT NOT NULL,
    last_status_code BIGINT,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    UNIQUE (webhook_id, position)
);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, id);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at, id)
    WHERE status = 'pending';

CREATE TABLE webhook_attempts (
    delivery_id TEXT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt     BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    status_code BIGINT,
    error       TEXT,
    duration_ms BIGINT NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);

-- `document` is the RetentionJob as JSON; `next_run_at` is its durable timer.
CREATE TABLE retention_jobs (
    id          TEXT COLLATE "C" PRIMARY KEY,
    next_run_at BIGINT,
    lease_until BIGINT,
    document    TEXT NOT NULL
);
CREATE INDEX retention_jobs_due ON retention_jobs (next_run_at);

-- The audit log's own retention is one explicit admin call (POST /api/v1/audit/retention),
-- which sets `gatehouse.audit_retention` for its own transaction only; nothing else may
-- delete a line, and no line is ever updated.
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('gatehouse.audit_retention', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'the audit log is append-only';
END
$$;
