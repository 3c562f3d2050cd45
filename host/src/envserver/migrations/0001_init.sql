-- The reference environment's own database. Times are RFC 3339 strings in UTC.

CREATE TABLE settings (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    environment_id TEXT NOT NULL,
    name           TEXT NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('development', 'target')),
    managed        INTEGER NOT NULL,
    linked_host    TEXT
);

-- Only the SHA-256 of each bearer token, never the token.
CREATE TABLE tokens (
    token_sha256 TEXT PRIMARY KEY,
    created_at   TEXT NOT NULL
);

-- Development: the unmanaged solutions makers pushed. Target: what imports installed.
CREATE TABLE solutions (
    unique_name      TEXT PRIMARY KEY,
    display_name     TEXT NOT NULL,
    version          TEXT NOT NULL,
    managed          INTEGER NOT NULL,
    publisher_prefix TEXT NOT NULL,
    manifest         TEXT NOT NULL,
    package_sha256   TEXT NOT NULL,
    package_size     INTEGER NOT NULL,
    installed_at     TEXT NOT NULL,
    operation_id     TEXT
);

-- One row per exported version; exporting it again answers this row.
CREATE TABLE exports (
    unique_name      TEXT NOT NULL,
    version          TEXT NOT NULL,
    manifest         TEXT NOT NULL,
    source_sha256    TEXT NOT NULL,
    managed_sha256   TEXT NOT NULL,
    managed_size     INTEGER NOT NULL,
    unmanaged_sha256 TEXT NOT NULL,
    unmanaged_size   INTEGER NOT NULL,
    exported_at      TEXT NOT NULL,
    PRIMARY KEY (unique_name, version)
);

CREATE TABLE imports (
    operation_id    TEXT PRIMARY KEY,
    package_sha256  TEXT NOT NULL,
    settings        TEXT NOT NULL,
    allow_downgrade INTEGER NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    error           TEXT,
    findings        TEXT,
    unique_name     TEXT NOT NULL,
    version         TEXT NOT NULL,
    started_at      TEXT NOT NULL,
    finished_at     TEXT
);

CREATE INDEX imports_running ON imports (status, started_at) WHERE status = 'running';

CREATE TABLE connections (
    name       TEXT PRIMARY KEY,
    connector  TEXT NOT NULL,
    created_at TEXT NOT NULL
);
