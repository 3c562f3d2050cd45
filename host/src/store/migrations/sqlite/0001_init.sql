-- Gatehouse schema 1 for SQLite. Ids are UUIDv7 text, so ordering by id is ordering by
-- creation; timestamps are milliseconds since the Unix epoch.

CREATE TABLE users (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    role         TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);

-- Only the SHA-256 of a bearer token is kept.
CREATE TABLE tokens (
    sha256     TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    label      TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX tokens_user ON tokens (user_id);

CREATE TABLE user_groups (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

-- `position` keeps members in the order they were given.
CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
    user_id  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members (user_id);

-- `document` is the EnvironmentRecord as JSON; the credential lives only in its column.
CREATE TABLE environments (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    credential TEXT,
    document   TEXT NOT NULL
);

-- `document` is the whole PipelineRecord as JSON, stages included.
CREATE TABLE pipelines (
    id       TEXT PRIMARY KEY,
    name     TEXT NOT NULL UNIQUE,
    document TEXT NOT NULL
);

-- Components, stored once per SHA-256.
CREATE TABLE blobs (
    sha256     TEXT PRIMARY KEY,
    size       INTEGER NOT NULL,
    content    BLOB NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE plugins (
    id       TEXT PRIMARY KEY,
    name     TEXT NOT NULL,
    version  TEXT NOT NULL,
    sha256   TEXT NOT NULL REFERENCES blobs (sha256),
    document TEXT NOT NULL,
    UNIQUE (name, version)
);
CREATE INDEX plugins_sha256 ON plugins (sha256);

-- What each pipeline refers to, so that nothing a pipeline uses can be deleted under it.
CREATE TABLE pipeline_environments (
    pipeline_id    TEXT NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
    environment_id TEXT NOT NULL REFERENCES environments (id),
    PRIMARY KEY (pipeline_id, environment_id)
);
CREATE INDEX pipeline_environments_environment ON pipeline_environments (environment_id);

CREATE TABLE pipeline_plugins (
    pipeline_id TEXT NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
    plugin_id   TEXT NOT NULL REFERENCES plugins (id),
    PRIMARY KEY (pipeline_id, plugin_id)
);
CREATE INDEX pipeline_plugins_plugin ON pipeline_plugins (plugin_id);

-- `document` is the whole DeploymentRecord as JSON; the columns copy what is filtered,
-- claimed and checked. Pipelines, stages and environments are not foreign keys: a
-- deployment is history and outlives them.
CREATE TABLE deployments (
    id                    TEXT PRIMARY KEY,
    pipeline_id           TEXT NOT NULL,
    stage_id              TEXT NOT NULL,
    target_environment_id TEXT NOT NULL,
    solution_name         TEXT NOT NULL,
    version               TEXT NOT NULL,
    requested_by          TEXT NOT NULL,
    requested_at          INTEGER NOT NULL,
    status                TEXT NOT NULL,
    finished_at           INTEGER,
    next_run_at           INTEGER,
    lease_owner           TEXT,
    lease_until           INTEGER,
    idempotency_key       TEXT,
    revision              INTEGER NOT NULL,
    document              TEXT NOT NULL
);
CREATE INDEX deployments_pipeline ON deployments (pipeline_id, id);
CREATE INDEX deployments_target ON deployments (target_environment_id, id);
CREATE INDEX deployments_status ON deployments (status, id);
CREATE INDEX deployments_stage_solution ON deployments (stage_id, solution_name, status);
-- NULL keys never collide, so only deployments that carry a key are checked.
CREATE UNIQUE INDEX deployments_idempotency_key ON deployments (requested_by, idempotency_key);
-- Only one deployment runs `deploying` per target environment at a time.
CREATE UNIQUE INDEX deployments_one_deploying_per_target ON deployments (target_environment_id)
    WHERE status = 'deploying';
-- The engine's work queue; the WHERE must match claim_due's text for SQLite to use it.
CREATE INDEX deployments_due ON deployments (next_run_at)
    WHERE status IN ('queued', 'scheduled', 'validating', 'pending_approval', 'deploying');

CREATE TABLE deployment_events (
    deployment_id TEXT NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    seq           INTEGER NOT NULL,
    at            INTEGER NOT NULL,
    kind          TEXT NOT NULL,
    actor         TEXT,
    detail        TEXT NOT NULL,
    PRIMARY KEY (deployment_id, seq)
);

CREATE TABLE votes (
    id            TEXT PRIMARY KEY,
    deployment_id TEXT NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    voter_id      TEXT NOT NULL,
    approve       INTEGER NOT NULL,
    comment       TEXT NOT NULL,
    at            INTEGER NOT NULL
);
CREATE INDEX votes_deployment ON votes (deployment_id, at);

-- AUTOINCREMENT never reuses an id, so ids stay valid cursors.
CREATE TABLE audit_log (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at     INTEGER NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
