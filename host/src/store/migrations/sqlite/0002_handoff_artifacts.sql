-- Deployments whose pre-deployment step is done and that wait for their target to be
-- free: the engine hands the target to the oldest of them when a deployment finishes.
ALTER TABLE deployments ADD COLUMN waiting_since INTEGER;
CREATE INDEX deployments_waiting_for_target
    ON deployments (target_environment_id, waiting_since, id)
    WHERE waiting_since IS NOT NULL;
-- Only `SELECT DISTINCT version` of succeeded deployments per stage and solution.
CREATE INDEX deployments_stage_versions
    ON deployments (stage_id, solution_name, status, version);

-- Exported solution versions: the managed and unmanaged packages, by content address.
-- These are the backups; later stages import the same artifact.
CREATE TABLE artifacts (
    id                    TEXT PRIMARY KEY,
    solution_name         TEXT NOT NULL,
    version               TEXT NOT NULL,
    managed_sha256        TEXT NOT NULL,
    unmanaged_sha256      TEXT NOT NULL,
    created_at            INTEGER NOT NULL,
    document              TEXT NOT NULL
);
CREATE UNIQUE INDEX artifacts_solution_version ON artifacts (solution_name, version);
CREATE INDEX artifacts_solution ON artifacts (solution_name, id);

-- Facts about this host: its id, which environments are linked to.
CREATE TABLE host_info (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
