-- Web console sessions. The cookie carries a 256-bit random id; only its SHA-256 is kept.
-- A session belongs to the token it was signed in with, so deleting the token (or its
-- user) ends the session too.
CREATE TABLE web_sessions (
    sha256       TEXT PRIMARY KEY,
    token_sha256 TEXT NOT NULL REFERENCES tokens (sha256) ON DELETE CASCADE,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX web_sessions_expires ON web_sessions (expires_at);
CREATE INDEX web_sessions_token ON web_sessions (token_sha256);
CREATE INDEX web_sessions_user ON web_sessions (user_id);

-- The console's and the metrics summary's aggregate reads (store/reports.rs) each read
-- one of these covering indexes, never the deployments' documents, so a page costs
-- about the same with ten thousand deployments as with ten. The two partial ones hold
-- succeeded deployments only, and change once in a deployment's life.
CREATE INDEX deployments_console_days ON deployments (requested_at, status, pipeline_id);
CREATE INDEX deployments_console_versions
    ON deployments (solution_name, version, requested_at, pipeline_id);
CREATE INDEX deployments_console_stage_succeeded
    ON deployments (stage_id, solution_name, finished_at, id, requested_at, version,
                    requested_by, target_environment_id, pipeline_id, status)
    WHERE status = 'succeeded';
CREATE INDEX deployments_console_solution_succeeded
    ON deployments (solution_name, version, target_environment_id, finished_at, id,
                    requested_by, stage_id, pipeline_id, status)
    WHERE status = 'succeeded';
