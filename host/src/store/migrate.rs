//! Versioned schema migrations, one list per backend, applied at start in one transaction.
//!
//! A migration, once released, never changes: a new schema is a new numbered file.

use sqlx::AnyPool;

use super::db::{SqlxResult, now_ms};
use super::{Backend, StoreError, StoreResult};

/// One schema step.
pub(super) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("migrations/sqlite/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "handoff_artifacts",
        sql: include_str!("migrations/sqlite/0002_handoff_artifacts.sql"),
    },
    Migration {
        version: 3,
        name: "web_sessions",
        sql: include_str!("migrations/sqlite/0003_web_sessions.sql"),
    },
    Migration {
        version: 4,
        name: "revisions",
        sql: include_str!("migrations/sqlite/0004_revisions.sql"),
    },
    Migration {
        version: 5,
        name: "events_webhooks_retention",
        sql: include_str!("migrations/sqlite/0005_events_webhooks_retention.sql"),
    },
    Migration {
        version: 6,
        name: "binding_ids",
        sql: include_str!("migrations/sqlite/0006_binding_ids.sql"),
    },
    Migration {
        version: 7,
        name: "link_secrets",
        sql: include_str!("migrations/sqlite/0007_link_secrets.sql"),
    },
];

const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "handoff_artifacts",
        sql: include_str!("migrations/postgres/0002_handoff_artifacts.sql"),
    },
    Migration {
        version: 3,
        name: "web_sessions",
        sql: include_str!("migrations/postgres/0003_web_sessions.sql"),
    },
    Migration {
        version: 4,
        name: "revisions",
        sql: include_str!("migrations/postgres/0004_revisions.sql"),
    },
    Migration {
        version: 5,
        name: "events_webhooks_retention",
        sql: include_str!("migrations/postgres/0005_events_webhooks_retention.sql"),
    },
    Migration {
        version: 6,
        name: "binding_ids",
        sql: include_str!("migrations/postgres/0006_binding_ids.sql"),
    },
    Migration {
        version: 7,
        name: "link_secrets",
        sql: include_str!("migrations/postgres/0007_link_secrets.sql"),
    },
];

/// Any number, as long as every replica uses the same one to take the migration lock.
const POSTGRES_MIGRATION_LOCK: i64 = 0x6761_7465_686f_7573; // "gatehous"

pub(super) fn migrations(backend: Backend) -> &'static [Migration] {
    match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    }
}

/// Brings the schema up to the newest version this binary knows, and refuses a database
/// whose schema is newer than that.
pub(super) async fn migrate(pool: &AnyPool, backend: Backend) -> StoreResult<()> {
    let known = migrations(backend);
    let latest = known.last().map_or(0, |m| m.version);
    let mut tx = match backend {
        Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await.store()?,
        Backend::Postgres => pool.begin().await.store()?,
    };
    if backend == Backend::Postgres {
        // Replicas starting together take turns; the second finds nothing left to do.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(POSTGRES_MIGRATION_LOCK)
            .execute(&mut *tx)
            .await
            .store()?;
    }
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version    BIGINT PRIMARY KEY,
            name       TEXT NOT NULL,
            applied_at BIGINT NOT NULL
        )",
    )
    .execute(&mut *tx)
    .await
    .store()?;
    let current: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations")
        .fetch_one(&mut *tx)
        .await
        .store()?;
    let current = current.unwrap_or(0);
    if current > latest {
        return Err(StoreError::Backend(format!(
            "the database schema is at version {current}, but this gatehouse knows versions up \
             to {latest} only: run a gatehouse at least as new as the one that last used this \
             database"
        )));
    }
    for migration in known.iter().filter(|m| m.version > current) {
        sqlx::raw_sql(migration.sql)
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                StoreError::Backend(format!(
                    "migration {} ({}) failed: {e}",
                    migration.version, migration.name
                ))
            })?;
        if migration.version == super::binding_ids::VERSION {
            super::binding_ids::migrate(&mut tx).await?;
        }
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(migration.version)
        .bind(migration.name)
        .bind(now_ms())
        .execute(&mut *tx)
        .await
        .store()?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "applied migration"
        );
    }
    tx.commit().await.store()
}
